// `npm run build:kata-payload -- --kata-dir <dir> --tag <tag>`: builds a Kata payload image (OCI archive)
// from a directory laid out like kata-deploy's /opt/kata, e.g. a kata-static release unpacked (docs/payloads.md).
// Flags: --kata-dir <dir> (required), --tag <tag> (required), --repository <name>, --out <file>.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeArchive } from "../src/images/build.js";
import { buildKataPayloadImage, DEFAULT_KATA_PAYLOAD_REPOSITORY } from "../src/images/payload.js";
import { repoRoot } from "../src/manifests/image-lock.js";

const { values } = parseArgs({
  options: {
    "kata-dir": { type: "string" },
    tag: { type: "string" },
    repository: { type: "string" },
    out: { type: "string" },
  },
});
if (!values["kata-dir"] || !values.tag) {
  process.stderr.write("build:kata-payload: --kata-dir <dir> (kata-deploy's /opt/kata tree, e.g. opt/kata of a kata-static release) and --tag <tag> are required\n");
  process.exit(2);
}
const dir = resolve(values["kata-dir"]);
const started = Date.now();
const built = buildKataPayloadImage({ dir, tag: values.tag, repository: values.repository ?? DEFAULT_KATA_PAYLOAD_REPOSITORY, source: `--kata-dir ${dir}` });
const out = values.out ? resolve(values.out) : join(repoRoot(), "dist", "images", `sandbox-operator-kata-${values.tag}.oci.tar`);
writeArchive(built, out);
console.log(`payload image ${built.repository}:${built.tag}`);
console.log(`payload digest ${built.digest}`);
console.log(`payload archive ${out} (${(built.archive.length / 1048576).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
