// `npm run build:image`: builds the operator image and the gVisor payload image (OCI archives),
// records both digests in deploy/image.json and regenerates the manifests that pin them. Flags:
// --out <file>, --repository <name>, --payload-dir <dir> (legacy: binaries inside the operator
// image), --gvisor-dir <dir> (payload binaries; default: the build cache's gVisor build), --no-lock.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildOperatorImage, writeArchive } from "../src/images/build.js";
import { buildGvisorPayloadImage } from "../src/images/payload.js";
import { repoRoot, writeImageLock } from "../src/manifests/image-lock.js";
import { writeGenerated } from "../src/manifests/write-generated.js";
import { buildDefaultGvisorPayload } from "../test/harness/gvisor.js";

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    repository: { type: "string" },
    "payload-dir": { type: "string" },
    "gvisor-dir": { type: "string" },
    "no-lock": { type: "boolean", default: false },
  },
});
const root = repoRoot();
const started = Date.now();
const result = buildOperatorImage({ root, repository: values.repository, payloadDir: values["payload-dir"] });
const out = values.out ?? join(root, "dist", "images", `sandbox-operator-${result.tag}.oci.tar`);
writeArchive(result, out);
console.log(`image ${result.repository}:${result.tag}`);
console.log(`digest ${result.digest}`);
console.log(`archive ${out} (${(result.archive.length / 1048576).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s)`);

const payloadStarted = Date.now();
const payloadRepository = values.repository ? `${values.repository}-gvisor` : undefined;
const payload = values["gvisor-dir"]
  ? buildGvisorPayloadImage({ dir: resolve(values["gvisor-dir"]), tag: result.tag, repository: payloadRepository, source: `--gvisor-dir ${resolve(values["gvisor-dir"])}` })
  : await buildDefaultGvisorPayload(result.tag, payloadRepository);
const payloadOut = join(out, "..", `sandbox-operator-gvisor-${result.tag}.oci.tar`);
writeArchive(payload, payloadOut);
console.log(`payload image ${payload.repository}:${payload.tag}`);
console.log(`payload digest ${payload.digest}`);
console.log(`payload archive ${payloadOut} (${(payload.archive.length / 1048576).toFixed(1)} MiB, ${((Date.now() - payloadStarted) / 1000).toFixed(1)} s)`);

if (!values["no-lock"]) {
  writeImageLock({ repository: result.repository, tag: result.tag, digest: result.digest, gvisorPayload: { repository: payload.repository, tag: payload.tag, digest: payload.digest } }, root);
  for (const path of writeGenerated(root)) console.log(`wrote ${path}`);
}
console.log(`import into containerd: ctr -n k8s.io images import --base-name ${result.repository} --digests ${out}`);
