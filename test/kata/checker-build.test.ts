// The checker is built by the harness from test code; where the cache lacks it and no Go toolchain
// is on PATH, the test that needs it fails loudly, naming what is missing (never skips).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";
import { repoRoot } from "../../src/manifests/image-lock.js";

const run = promisify(execFile);

it("without Go and without a cached kata-check, ensureBinary fails saying Go is needed", async () => {
  const cache = mkdtempSync(join(tmpdir(), "kata-check-nogo-"));
  try {
    const script = `import { ensureBinary } from "./test/harness/binaries.ts"; await ensureBinary("kata-check");`;
    const err = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repoRoot(),
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME, SANDBOX_OPERATOR_CACHE: cache },
    }).then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    assert.ok(err, "ensureBinary succeeded without a Go toolchain");
    assert.match(err.stderr, /kata-check is not in the cache \(.*\) and no Go toolchain can build it: `go version` failed .*install Go >= 1\.26 on PATH/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
