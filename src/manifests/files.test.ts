// Drift check: the committed generated files must equal what the code renders now.
import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { renderedFiles } from "./files.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

for (const [path, content] of renderedFiles()) {
  it(`${path} is up to date (run \`npm run generate\` after changing src/api or src/manifests)`, () => {
    assert.ok(existsSync(join(root, path)), `${path} is missing: run npm run generate`);
    assert.equal(readFileSync(join(root, path), "utf8"), content, `${path} drifted from the code: run npm run generate and commit`);
  });
}
