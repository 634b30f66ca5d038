// Host-file primitives on a real filesystem: replacing a running binary (no "text file busy"),
// the host lock (exclusive, stale when its holder is gone), and pruning the directories we emptied.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { atomicWrite, removeEmptyDirsUp } from "../../src/agent/fsutil.js";
import { HostLock, StateDir } from "../../src/agent/txn.js";

const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-fs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

it("replaces a binary that is running, where an in-place write fails with ETXTBSY", async () => {
  const bin = join(dir, "runsc");
  copyFileSync("/bin/sleep", bin);
  const child = spawn(bin, ["30"]);
  await new Promise((r) => setTimeout(r, 200));
  assert.throws(() => writeFileSync(bin, "new"), /ETXTBSY/);
  atomicWrite(bin, "#!/bin/sh\nexit 0\n", 0o755);
  assert.equal(readFileSync(bin, "utf8"), "#!/bin/sh\nexit 0\n");
  child.kill("SIGKILL");
});

it("the host lock is exclusive and taken over once stale", () => {
  const state = new StateDir(join(dir, "host"));
  const a = new HostLock(state);
  const b = new HostLock(state);
  a.acquire();
  // Same process counts as the holder's pid namespace; simulate another live holder by pid 1.
  writeFileSync(join(state.dir, "lock"), JSON.stringify({ pid: 1, ns: "pid:[other]" }));
  assert.throws(() => b.acquire(), /another sandbox-operator agent holds/);
  const old = new Date(Date.now() - 60_000);
  utimesSync(join(state.dir, "lock"), old, old);
  b.acquire();
  b.release();
  a.release();
});

it("removeEmptyDirsUp: the emptied directory and its empty parents up to the top go; anything holding an entry stays, and nothing above the top", () => {
  const top = join(dir, "opt", "sandbox-operator");
  for (const d of ["bin", "etc/kata", "gvisor/installed-by-hand"]) mkdirSync(join(top, d), { recursive: true });
  assert.deepEqual(removeEmptyDirsUp(join(top, "etc", "kata"), top), [join(top, "etc", "kata"), join(top, "etc")]);
  assert.deepEqual(removeEmptyDirsUp(join(top, "gvisor"), top), [], "someone else's empty directory keeps gvisor/");
  assert.ok(existsSync(join(top, "gvisor", "installed-by-hand")));
  assert.deepEqual(removeEmptyDirsUp(join(top, "bin", "gone"), top), [join(top, "bin")], "a directory already gone is passed over");
  rmSync(join(top, "gvisor"), { recursive: true });
  assert.deepEqual(removeEmptyDirsUp(join(top, "bin"), top), [top]);
  assert.ok(existsSync(join(dir, "opt")), "the top's parent is not ours");
  assert.deepEqual(removeEmptyDirsUp(join(dir, "elsewhere"), top), [], "outside the top: untouched");
});
