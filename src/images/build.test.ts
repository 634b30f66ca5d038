// The pieces of the image builder that decide what goes in: ldd parsing, the production package
// list from package-lock.json, and symlink-faithful host paths.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../manifests/image-lock.js";
import { binaryEntries, HOST_TOOLS, hostPathEntries, parseLdd, payloadLayer, productionPackages, RUNTIME_ASSETS, verifyToolsEntries } from "./build.js";

describe("parseLdd", () => {
  it("returns the libraries and the loader, not the vDSO", () => {
    const out = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f25)",
      "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f25)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f25)",
      "\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f25)",
    ].join("\n");
    assert.deepEqual(parseLdd(out), ["/lib/x86_64-linux-gnu/libdl.so.2", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/ld-linux-x86-64.so.2"]);
  });
  it("fails when a library is missing", () => {
    assert.throws(() => parseLdd("\tlibfoo.so.1 => not found\n"), /a library is missing on this machine: libfoo\.so\.1 => not found/);
  });
});

describe("productionPackages", () => {
  it("keeps runtime dependencies and drops dev, optional-dev, links and the root", () => {
    const lock = {
      packages: {
        "": {},
        "node_modules/yaml": {},
        "node_modules/eslint": { dev: true },
        "node_modules/fsevents": { devOptional: true },
        "node_modules/a/node_modules/b": {},
        "node_modules/local": { link: true },
        "node_modules/stray": { extraneous: true },
      },
    };
    assert.deepEqual(productionPackages(lock), ["node_modules/a/node_modules/b", "node_modules/yaml"]);
  });
});

describe("hostPathEntries", () => {
  // A merged-/usr host: /lib -> usr/lib, /usr/lib/x/libstdc++.so.6 -> libstdc++.so.6.0.30
  const links: Record<string, string> = { "/lib": "usr/lib", "/usr/lib/x/libstdc++.so.6": "libstdc++.so.6.0.30", "/lib64": "usr/lib64", "/usr/lib64/ld.so": "../lib/x/ld.so" };
  const files = new Set(["/usr/lib/x/libstdc++.so.6.0.30", "/usr/lib/x/ld.so"]);
  const dirs = new Set(["/usr", "/usr/lib", "/usr/lib/x", "/usr/lib64"]);
  const fake = {
    lstat: ((p: string) => {
      if (p in links) return { isSymbolicLink: () => true, isFile: () => false, mode: 0o777 };
      if (files.has(p)) return { isSymbolicLink: () => false, isFile: () => true, mode: 0o755 };
      if (dirs.has(p)) return { isSymbolicLink: () => false, isFile: () => false, mode: 0o755 };
      throw new Error(`ENOENT ${p}`);
    }) as never,
    readlink: ((p: string) => links[p]!) as never,
    readFile: ((p: string) => Buffer.from(p)) as never,
  };
  it("records every symlink on the way and the file at its real path", () => {
    const got = hostPathEntries("/lib/x/libstdc++.so.6", fake).map((e) => (e.type === "symlink" ? `${e.path} -> ${e.target}` : `${e.path} (${e.type})`));
    assert.deepEqual(got, ["/lib -> usr/lib", "/usr/lib/x/libstdc++.so.6 -> libstdc++.so.6.0.30", "/usr/lib/x/libstdc++.so.6.0.30 (file)"]);
  });
  it("follows relative links that climb", () => {
    const got = hostPathEntries("/lib64/ld.so", fake).map((e) => e.path);
    assert.deepEqual(got, ["/lib64", "/usr/lib64/ld.so", "/usr/lib/x/ld.so"]);
  });
});

describe("payloadLayer", () => {
  it("takes runsc and its shim as executables under the payload dir, and names what is missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "payload-"));
    try {
      writeFileSync(join(dir, "runsc"), "r", { mode: 0o755 });
      assert.throws(() => payloadLayer(dir), /containerd-shim-runsc-v1 is missing/);
      writeFileSync(join(dir, "containerd-shim-runsc-v1"), "s", { mode: 0o644 });
      assert.throws(() => payloadLayer(dir), /containerd-shim-runsc-v1 is not an executable file/);
      chmodSync(join(dir, "containerd-shim-runsc-v1"), 0o755);
      const layer = payloadLayer(dir);
      assert.deepEqual(layer.entries.map((e) => [e.path, e.type === "file" ? e.mode : 0]), [
        ["/opt/sandbox-operator/payload/runsc", 0o755],
        ["/opt/sandbox-operator/payload/containerd-shim-runsc-v1", 0o755],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what the image carries besides compiled JavaScript", () => {
  it("every non-TypeScript file under src/ (test data aside) is a listed runtime asset", () => {
    const root = repoRoot();
    const walk = (rel: string): string[] =>
      readdirSync(join(root, rel), { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? (d.name === "testdata" ? [] : walk(`${rel}/${d.name}`)) : [`${rel}/${d.name}`]));
    const assets = walk("src").filter((f) => !f.endsWith(".ts")).sort();
    assert.deepEqual(assets, [...RUNTIME_ASSETS].sort(), "a file src/ code loads at run time must be in RUNTIME_ASSETS (src/images/build.ts), or tsc output alone will lack it");
  });

  it("carries a static busybox and the verification applets off PATH, and names the package when busybox is missing", () => {
    const entries = verifyToolsEntries();
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.get("/usr/lib/sandbox-operator/verify/busybox")?.type, "file");
    for (const a of ["sh", "uname", "dmesg", "head"]) assert.deepEqual(byPath.get(`/usr/lib/sandbox-operator/verify/${a}`), { path: `/usr/lib/sandbox-operator/verify/${a}`, type: "symlink", target: "busybox" });
    assert.throws(() => verifyToolsEntries("/nonexistent/busybox"), /busybox-static/);
  });

  it("binaryEntries takes node and nsenter with their libraries, each path once", () => {
    const entries = binaryEntries([process.execPath, ...HOST_TOOLS]);
    const paths = entries.map((e) => e.path);
    assert.equal(new Set(paths).size, paths.length, "no duplicate tar paths");
    assert.ok(paths.some((p) => p.endsWith("/nsenter")), "nsenter is in");
    assert.ok(paths.some((p) => /libselinux\.so/.test(p)), "nsenter's libselinux is in (node does not link it)");
    assert.ok(paths.some((p) => /libc\.so\.6$/.test(p)));
  });
});
