// `npm run build:image`: builds the OCI archive, records its digest in deploy/image.json and
// regenerates the manifests that pin it. Flags: --out <file>, --repository <name>,
// --payload-dir <dir> (runsc + containerd-shim-runsc-v1 for the agent), --no-lock.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildOperatorImage, writeArchive } from "./build.js";
import { repoRoot, writeImageLock } from "../manifests/image-lock.js";
import { writeGenerated } from "../manifests/write-generated.js";

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    repository: { type: "string" },
    "payload-dir": { type: "string" },
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
if (!values["no-lock"]) {
  writeImageLock({ repository: result.repository, tag: result.tag, digest: result.digest }, root);
  for (const path of writeGenerated(root)) console.log(`wrote ${path}`);
}
console.log(`import into containerd: ctr -n k8s.io images import --base-name ${result.repository} --digests ${out}`);
