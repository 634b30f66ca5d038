// Golden-file helper for the renderer tests: compares with testdata/<name>, or rewrites it when
// UPDATE_GOLDEN=1 (then review the diff before committing).
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DIR = join(dirname(fileURLToPath(import.meta.url)), "testdata");

export function golden(name: string, actual: string): void {
  const p = join(DIR, name);
  if (process.env.UPDATE_GOLDEN === "1" || !existsSync(p)) {
    if (process.env.UPDATE_GOLDEN !== "1") assert.fail(`golden file ${p} is missing: run with UPDATE_GOLDEN=1 and review it`);
    writeFileSync(p, actual);
    return;
  }
  assert.equal(actual, readFileSync(p, "utf8"), `output differs from ${p}; if intended, rerun with UPDATE_GOLDEN=1 and review the diff`);
}
