// Drift check: the committed generated files must equal what the code renders now.
import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_VERSION, renderedFiles } from "./files.js";
import { readImageLock, repoRoot } from "./image-lock.js";

const root = repoRoot();

for (const [path, content] of renderedFiles(readImageLock(root))) {
  it(`${path} is up to date (run \`npm run generate\` after changing src/api or src/manifests)`, () => {
    assert.ok(existsSync(join(root, path)), `${path} is missing: run npm run generate`);
    assert.equal(readFileSync(join(root, path), "utf8"), content, `${path} drifted from the code: run npm run generate and commit`);
  });
}

it("the manifests are stamped with package.json's version", () => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  assert.equal(PACKAGE_VERSION, pkg.version, "update PACKAGE_VERSION in src/manifests/files.ts and run npm run generate");
});
