// Reads and writes deploy/image.json, the image (repository, tag, digest) the manifests pin;
// `npm run build:image` writes it, `npm run generate` and `sandboxctl install` read it.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ImageRef } from "./names.js";

export const IMAGE_LOCK = "deploy/image.json";

/** The repository root: the nearest directory above this module with our package.json. */
export function repoRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "sandbox-operator") return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no sandbox-operator package.json above ${from}`);
    dir = up;
  }
}

export function readImageLock(root = repoRoot()): ImageRef {
  const path = join(root, IMAGE_LOCK);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run build:image (it records the image digest the manifests pin), or pass --image`);
  const lock = JSON.parse(readFileSync(path, "utf8")) as Partial<ImageRef>;
  if (!lock.repository || !lock.tag || !lock.digest) throw new Error(`${path} must have repository, tag and digest: run npm run build:image`);
  const g = lock.gvisorPayload;
  if (g && (!g.repository || !g.tag || !/^sha256:[0-9a-f]{64}$/.test(g.digest ?? ""))) throw new Error(`${path}: gvisorPayload must have repository, tag and a sha256 digest: run npm run build:image`);
  return { repository: lock.repository, tag: lock.tag, digest: lock.digest, ...(g ? { gvisorPayload: { repository: g.repository, tag: g.tag, digest: g.digest } } : {}) };
}

export function writeImageLock(image: ImageRef, root = repoRoot()): void {
  const g = image.gvisorPayload;
  const lock = { repository: image.repository, tag: image.tag, digest: image.digest, ...(g ? { gvisorPayload: { repository: g.repository, tag: g.tag, digest: g.digest } } : {}) };
  writeFileSync(join(root, IMAGE_LOCK), JSON.stringify(lock, null, 2) + "\n");
}
