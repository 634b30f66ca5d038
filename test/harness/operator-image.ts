// Gets the operator image to a cluster the way a user does: built as `npm run build:image` builds
// it, pushed to the cluster's registry by digest. The cluster tier and the demo share it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildOperatorImage, writeArchive } from "../../src/images/build.js";
import { readImageLock, repoRoot } from "../../src/manifests/image-lock.js";
import { buildDefaultGvisorPayload } from "./gvisor.js";
import type { Registry } from "./registry.js";

export interface PushedImage {
  /** `<registry>/<repository>@sha256:...` as the kubelet pulls it. */
  ref: string;
  digest: string;
  /** The gVisor payload image deploy/image.json pins (the agent's default payload), pushed beside it. */
  gvisorPayload?: { ref: string; digest: string };
}

/**
 * Builds the operator image (optionally with a gVisor payload) and pushes it as `repository`, and
 * the pinned gVisor payload image beside it (as `payloadRepository`, default the lock's name).
 * Without a payload the digest must be the one deploy/image.json pins, since the shipped manifests
 * name it (through the registry's `localhost` mirror: test/harness/node-config.ts MIRRORED).
 */
export async function pushOperatorImage(registry: Registry, opts: { repository?: string; payloadDir?: string; payloadRepository?: string } = {}): Promise<PushedImage> {
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
    const lock = readImageLock(root).gvisorPayload;
    if (!lock) return { ref, digest: built.digest };
    // The manifests name the payload as the lock pins it; the node's `localhost` mirror resolves it here.
    const payload = await buildDefaultGvisorPayload(lock.tag, lock.repository);
    if (payload.digest !== lock.digest) throw new Error(`deploy/image.json pins the gVisor payload ${lock.digest} but this tree builds ${payload.digest}: run npm run build:image`);
    const payloadArchive = join(work, "gvisor-payload.oci.tar");
    writeArchive(payload, payloadArchive);
    const payloadRef = await registry.push(payloadArchive, opts.payloadRepository ?? lock.repository.replace(/^localhost\//, ""), { tag: lock.tag });
    return { ref, digest: built.digest, gvisorPayload: { ref: payloadRef, digest: payload.digest } };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
