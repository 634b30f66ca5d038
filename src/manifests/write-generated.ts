// Writes every generated manifest under deploy/ and examples/ from the code and deploy/image.json;
// shared by `npm run generate` and `npm run build:image`.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { renderedFiles } from "./files.js";
import { readImageLock, repoRoot } from "./image-lock.js";

export function writeGenerated(root = repoRoot()): string[] {
  const written: string[] = [];
  for (const [path, content] of renderedFiles(readImageLock(root))) {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    written.push(path);
  }
  return written;
}
