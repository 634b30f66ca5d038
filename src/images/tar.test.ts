// The tar writer: GNU tar reads back what it writes (long names via PAX, symlinks, modes), and
// the same files in any order give the same bytes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalEntries, normalMode, tar, type TarEntry } from "./tar.js";

const long = `app/node_modules/${"deep/".repeat(30)}file.js`;
const entries: TarEntry[] = [
  { path: "usr/bin/node", type: "file", mode: 0o755, content: Buffer.from("#!binary") },
  { path: "lib", type: "symlink", target: "usr/lib" },
  { path: long, type: "file", mode: 0o644, content: Buffer.from("x".repeat(1000)) },
  { path: "app/l", type: "symlink", target: "/" + "t".repeat(150) },
  { path: "tmp", type: "dir", mode: 0o1777 },
  { path: "etc/empty", type: "file", mode: 0o644, content: Buffer.alloc(0) },
];

describe("tar", () => {
  it("is read back by GNU tar with names, contents, modes and links intact", () => {
    const dir = mkdtempSync(join(tmpdir(), "tar-test-"));
    try {
      writeFileSync(join(dir, "a.tar"), tar(entries));
      const listing = execFileSync("tar", ["-tvf", join(dir, "a.tar")], { encoding: "utf8" });
      assert.match(listing, /root\/root/);
      assert.match(listing, /1970-01-01/);
      execFileSync("mkdir", [join(dir, "x")]);
      execFileSync("tar", ["-xf", join(dir, "a.tar"), "-C", join(dir, "x")]);
      assert.equal(readFileSync(join(dir, "x", long), "utf8"), "x".repeat(1000));
      assert.equal(readFileSync(join(dir, "x", "usr/bin/node"), "utf8"), "#!binary");
      assert.equal(statSync(join(dir, "x", "usr/bin/node")).mode & 0o777, 0o755);
      assert.equal(readlinkSync(join(dir, "x", "lib")), "usr/lib");
      assert.equal(readlinkSync(join(dir, "x", "app/l")), "/" + "t".repeat(150));
      assert.equal(statSync(join(dir, "x", "etc/empty")).size, 0);
      const names = listing.trim().split("\n").map((l) => l.split(/\s+/).slice(5).join(" ").replace(/ -> .*/, ""));
      assert.deepEqual(names, [...names].sort(), "entries are sorted");
      assert.ok(names.includes("usr/") && names.includes("usr/bin/"), "parent directories are added");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives the same bytes for the same files in any order", () => {
    assert.deepEqual(tar([...entries].reverse()), tar(entries));
    assert.notDeepEqual(tar(entries.slice(1)), tar(entries));
  });

  it("canonicalises paths: no leading slash, parents first, last duplicate wins", () => {
    const c = canonicalEntries([
      { path: "/a/b/c", type: "file", mode: 0o644, content: Buffer.from("1") },
      { path: "a/b/c", type: "file", mode: 0o644, content: Buffer.from("2") },
    ]);
    assert.deepEqual(c.map((e) => e.path), ["a", "a/b", "a/b/c"]);
    assert.equal((c[2] as { content: Buffer }).content.toString(), "2");
  });

  it("normalises modes", () => {
    assert.deepEqual([normalMode("dir", 0o700), normalMode("file", 0o700), normalMode("file", 0o600), normalMode("file", 0o4711)], [0o755, 0o755, 0o644, 0o755]);
  });
});
