// Writes every generated manifest under deploy/; `npm run generate`. A test fails when the
// committed files differ from what this produces.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderedFiles } from "./files.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
for (const [path, content] of renderedFiles()) {
  const target = join(root, path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, content);
  console.log(`wrote ${path}`);
}
