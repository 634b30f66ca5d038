// The operator image, built without Docker: two builds of the same tree give the same digest,
// deploy/image.json pins that digest, and a real containerd imports the archive and runs
// `sandboxctl version` from it by its digest reference.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildOperatorImage, writeArchive, type BuildResult } from "../../src/images/build.js";
import { readImageLock, repoRoot } from "../../src/manifests/image-lock.js";
import { ENTRYPOINTS, NODE_BIN } from "../../src/manifests/names.js";
import { eventually } from "../harness/cluster.js";

const run = promisify(execFile);
const root = repoRoot();

describe("the operator image (OCI archive, no Docker)", () => {
  let first: BuildResult;
  let dir: string;
  let archive: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sandbox-operator-image-test-"));
    first = buildOperatorImage({ root, log: () => {} });
    archive = join(dir, "image.oci.tar");
    writeArchive(first, archive);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is reproducible: a second build of the same tree has the same digest and the same bytes", () => {
    const second = buildOperatorImage({ root, log: () => {} });
    assert.equal(second.digest, first.digest);
    assert.equal(second.configDigest, first.configDigest);
    assert.ok(second.archive.equals(first.archive), "the archives are byte-identical");
    assert.equal(first.layers.length, 3, "runtime, node_modules and app layers");
  });

  it("is the image deploy/image.json (and so every manifest) pins", () => {
    const lock = readImageLock(root);
    assert.equal(lock.digest, first.digest, "deploy/image.json is stale: run npm run build:image (it rebuilds the image, records its digest and regenerates deploy/) and commit");
    assert.equal(`${lock.repository}:${lock.tag}`, `${first.repository}:${first.tag}`);
  });

  describe("in a real containerd (Debian 1.6, runc)", () => {
    let ctd: ChildProcess;
    let socket: string;
    const ctr = (...args: string[]) => run("ctr", ["--address", socket, "--namespace", "sandbox-operator-test", ...args], { maxBuffer: 16 << 20 });

    before(async () => {
      for (const bin of ["/usr/bin/containerd", "/usr/bin/ctr"]) {
        assert.ok(existsSync(bin), `${bin} is missing: run scripts/setup.sh test (installs Debian's containerd and runc)`);
      }
      socket = join(dir, "containerd.sock");
      const config = join(dir, "config.toml");
      // CRI is off: this test drives containerd with ctr only, so no CNI or pause image is needed.
      writeFileSync(config, `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${socket}"\n`);
      ctd = spawn("/usr/bin/containerd", ["--config", config], { stdio: ["ignore", "ignore", "pipe"] });
      let log = "";
      ctd.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
      await eventually("containerd to serve", async () => {
        if (ctd.exitCode !== null) throw new Error(`containerd exited ${ctd.exitCode}: ${log}`);
        return (await ctr("version")).stdout.includes("Server");
      }, 30_000, 200);
    });
    after(async () => {
      if (ctd && ctd.exitCode === null) {
        const exited = new Promise((r) => ctd.once("exit", r));
        ctd.kill("SIGTERM");
        await exited;
      }
      const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => dir && m.startsWith(dir + "/"));
      for (const m of mounts.sort((a, b) => b.length - a.length)) await run("umount", ["-l", m]).catch(() => undefined);
    });

    it("imports the archive with its name and digest reference", async () => {
      // --base-name names the digest image after the repository (ctr 1.6 would say "import-<date>@sha256:...").
      await ctr("images", "import", "--base-name", first.repository, "--digests", archive);
      const { stdout } = await ctr("images", "ls", "-q");
      const refs = stdout.trim().split("\n").sort();
      assert.deepEqual(refs, [`${first.repository}:${first.tag}`, `${first.repository}@${first.digest}`].sort());
    });

    it("runs `sandboxctl version` from the image, referenced by digest as the manifests do", async () => {
      const ref = `${first.repository}@${first.digest}`;
      const { stdout, stderr } = await run("ctr", ["--address", socket, "--namespace", "sandbox-operator-test", "run", "--rm", ref, "sandboxctl-version", NODE_BIN, ENTRYPOINTS.cli, "version", "-o", "json"], { timeout: 60_000 });
      const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
      const got = JSON.parse(stdout) as { version: string; node: string; platform: string };
      assert.equal(got.version, pkg.version, stderr);
      assert.equal(got.node, process.version, "the image carries this machine's node");
      assert.equal(got.platform, `linux/${process.arch}`);
    });

    it("runs as the unprivileged user of the image config", async () => {
      const { stdout } = await run("ctr", ["--address", socket, "--namespace", "sandbox-operator-test", "run", "--rm", `${first.repository}@${first.digest}`, "whoami", NODE_BIN, "-e", "console.log(process.getuid(), process.getgid())"], { timeout: 60_000 });
      assert.equal(stdout.trim(), "65532 65532");
    });
  });
});
