// Gets the operator image to a cluster the way a user does: built as `npm run build:image` builds
// it, pushed to the cluster's registry by digest. The cluster tier and the demo share it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildOperatorImage, writeArchive } from "../../src/images/build.js";
import { readImageLock, repoRoot } from "../../src/manifests/image-lock.js";
import type { Registry } from "./registry.js";

export interface PushedImage {
  /** `<registry>/<repository>@sha256:...` as the kubelet pulls it. */
  ref: string;
  digest: string;
}

/**
 * Builds the operator image (optionally with a gVisor payload) and pushes it as `repository`.
 * Without a payload the digest must be the one deploy/image.json pins, since the shipped manifests
 * name it (through the registry's `localhost` mirror: test/harness/node-config.ts MIRRORED).
 */
export async function pushOperatorImage(registry: Registry, opts: { repository?: string; payloadDir?: string } = {}): Promise<PushedImage> {
  const root = repoRoot();
  const built = buildOperatorImage({ root, payloadDir: opts.payloadDir, log: () => undefined });
  if (!opts.payloadDir) {
    const lock = readImageLock(root);
    if (built.digest !== lock.digest) throw new Error(`deploy/image.json pins ${lock.digest} but this tree builds ${built.digest}: run npm run build:image`);
  }
  const work = mkdtempSync(join(tmpdir(), "sandbox-operator-image-push-"));
  try {
    const archive = join(work, "operator.oci.tar");
    writeArchive(built, archive);
    const ref = await registry.push(archive, opts.repository ?? "sandbox-operator", { tag: built.tag });
    return { ref, digest: built.digest };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
