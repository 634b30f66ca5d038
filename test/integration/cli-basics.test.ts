// sandboxctl without a cluster: version, usage errors, the kubectl plugin name, unreachable
// clusters, and docs/cli.md's exit-code table matching the code.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { EXIT } from "../../src/cli/exit-codes.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { MAIN, sandboxctl } from "../harness/sandboxctl.js";

const root = repoRoot();
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string; bin: Record<string, string> };

describe("sandboxctl basics", () => {
  it("prints its version as text and JSON", async () => {
    const text = await sandboxctl(["version"]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, `sandboxctl ${pkg.version} (node ${process.version}, linux/${process.arch})\n`);
    const json = await sandboxctl(["version", "-o", "json"]);
    assert.deepEqual(JSON.parse(json.stdout), { version: pkg.version, node: process.version, platform: `linux/${process.arch}` });
  });

  it("exits 2 on usage errors and 0 on --help", async () => {
    for (const args of [["bogus"], ["install", "--timeout", "soon"], ["status", "-o", "wide"], []]) {
      const r = await sandboxctl(args);
      assert.equal(r.code, EXIT.usage, `${args.join(" ")}: ${r.stderr}`);
    }
    assert.match((await sandboxctl(["install", "--timeout", "soon"])).stderr, /"soon" is not a duration/);
    const help = await sandboxctl(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: sandboxctl/);
  });

  it("refuses an image that is not pinned by digest", async () => {
    const r = await sandboxctl(["install", "--dry-run", "--image", "registry.example.com/sandbox-operator:latest"]);
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /must be pinned by digest/);
  });

  it("calls itself `kubectl sandbox` when run as the kubectl-sandbox plugin, which both bins point to", () => {
    assert.equal(pkg.bin.sandboxctl, "dist/src/cli/main.js");
    assert.equal(pkg.bin["kubectl-sandbox"], "dist/src/cli/main.js");
    const dir = mkdtempSync(join(tmpdir(), "plugin-"));
    try {
      symlinkSync(MAIN, join(dir, "kubectl-sandbox"));
      const r = spawnSync(process.execPath, ["--import", "tsx", join(dir, "kubectl-sandbox"), "--help"], { cwd: root, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Usage: kubectl sandbox/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits 3 when the cluster cannot be reached or the kubeconfig is unusable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    try {
      const kc = join(dir, "kubeconfig");
      writeFileSync(kc, JSON.stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true } }], users: [{ name: "u", user: { token: "t" } }], contexts: [{ name: "c", context: { cluster: "c", user: "u" } }], "current-context": "c" }));
      const refused = await sandboxctl(["status"], { KUBECONFIG: kc });
      assert.equal(refused.code, EXIT.unreachable, refused.stderr);
      assert.match(refused.stderr, /cannot reach the cluster \(ECONNREFUSED/);
      const missing = await sandboxctl(["status", "--kubeconfig", join(dir, "nope")]);
      assert.equal(missing.code, EXIT.unreachable);
      const noContext = await sandboxctl(["status", "--context", "other"], { KUBECONFIG: kc });
      assert.equal(noContext.code, EXIT.unreachable);
      assert.match(noContext.stderr, /kubeconfig has no context "other"; contexts: c/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("docs/cli.md lists every exit code the code defines, with the same numbers", () => {
    const doc = readFileSync(join(root, "docs", "cli.md"), "utf8");
    const rows = [...doc.matchAll(/^\| (\d+) \| (\w+) \|/gm)].map((m) => [m[2]!, Number(m[1])]);
    assert.deepEqual(Object.fromEntries(rows), { ...EXIT });
  });
});
