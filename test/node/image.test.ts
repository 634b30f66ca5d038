// The operator image, built without Docker: two builds of the same tree give the same digest,
// deploy/image.json pins that digest, and a real containerd imports the archive and runs
// `sandboxctl version` from it by its digest reference through the CRI API (as the kubelet would).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildOperatorImage, writeArchive, type BuildResult } from "../../src/images/build.js";
import { readImageLock, repoRoot } from "../../src/manifests/image-lock.js";
import { ENTRYPOINTS, NODE_BIN } from "../../src/manifests/names.js";
import type { CriClient } from "../../src/agent/cri/client.js";
import { parseAllDocuments } from "yaml";
import { eventually } from "../harness/cluster.js";
import { buildDefaultGvisorPayload } from "../harness/gvisor.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";

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

  it("a plain build also pins the gVisor payload image, which the shipped agent DaemonSet installs by default", async () => {
    const lock = readImageLock(root).gvisorPayload;
    assert.ok(lock, "deploy/image.json has no gvisorPayload: run npm run build:image");
    const built = await buildDefaultGvisorPayload(lock.tag, lock.repository);
    assert.equal(built.digest, lock.digest, "deploy/image.json's gvisorPayload is stale: run npm run build:image and commit");
    const manifests = parseAllDocuments(readFileSync(join(root, "deploy", "sandbox-operator.yaml"), "utf8")).map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Array<{ name: string; args?: string[] }> } } } });
    const agent = manifests.find((m) => m.kind === "DaemonSet")?.spec?.template?.spec?.containers?.find((c) => c.name === "agent");
    assert.ok(agent?.args?.includes(`--gvisor-payload=${lock.repository}@${lock.digest}`), `agent args: ${agent?.args?.join(" ")}`);
  });

  describe("in a real containerd (Debian 1.6, runc) through the CRI API, as the kubelet runs it", () => {
    let ctd: Containerd;
    let cri: CriClient;
    const ref = () => `${first.repository}@${first.digest}`;

    before(async () => {
      ctd = await startContainerd({ version: "1.6", hostRoot: join(dir, "host") });
      cri = ctd.cri();
    });
    after(async () => {
      cri?.close();
      await ctd?.stop();
    });

    /** One pod sandbox and one container running `command` to completion; its exit code and stdout. */
    async function runInPod(name: string, command: string[]): Promise<{ exitCode: number; stdout: string }> {
      const logs = join(dir, "podlogs", name);
      mkdirSync(logs, { recursive: true });
      const sandbox = { metadata: { name, uid: name, namespace: "image-test", attempt: 0 }, hostname: "", log_directory: logs, linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } } };
      const pod = await cri.runPodSandbox(sandbox, "");
      try {
        const cid = await cri.createContainer(pod, { metadata: { name, attempt: 0 }, image: { image: ref() }, command, log_path: `${name}.log` }, sandbox);
        await cri.startContainer(cid);
        const st = await eventually(`container ${name} to exit`, async () => {
          const s = await cri.containerStatus(cid);
          return s.state === "CONTAINER_EXITED" ? s : undefined;
        }, 60_000, 100);
        // CRI log lines: "<time> stdout F <text>".
        const stdout = readFileSync(join(logs, `${name}.log`), "utf8").split("\n").flatMap((l) => /^\S+ stdout [FP] (.*)$/.exec(l)?.[1] ?? []).join("\n");
        return { exitCode: st.exit_code, stdout };
      } finally {
        await cri.stopPodSandbox(pod).catch(() => undefined);
        await cri.removePodSandbox(pod).catch(() => undefined);
      }
    }

    it("imports the archive with its name and digest reference, and CRI resolves the digest", async () => {
      // --base-name names the digest image after the repository (ctr 1.6 would say "import-<date>@sha256:...").
      await run(ctd.bin.ctr, ["--address", ctd.socket, "--namespace", "k8s.io", "images", "import", "--base-name", first.repository, "--digests", archive], { maxBuffer: 16 << 20 });
      const { stdout } = await run(ctd.bin.ctr, ["--address", ctd.socket, "--namespace", "k8s.io", "images", "ls", "-q"]);
      const refs = stdout.trim().split("\n").filter((r) => r.startsWith(`${first.repository}:`) || r.startsWith(`${first.repository}@`)).sort();
      assert.deepEqual(refs, [`${first.repository}:${first.tag}`, ref()].sort());
      assert.equal(await cri.imageStatus(ref()), first.configDigest, "CRI's image id is the config digest");
    });

    it("runs `sandboxctl version` from the image, referenced by digest as the manifests do", async () => {
      const r = await runInPod("sandboxctl-version", [NODE_BIN, ENTRYPOINTS.cli, "version", "-o", "json"]);
      assert.equal(r.exitCode, 0, r.stdout);
      const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
      const got = JSON.parse(r.stdout) as { version: string; node: string; platform: string };
      assert.equal(got.version, pkg.version);
      assert.equal(got.node, process.version, "the image carries this machine's node");
      assert.equal(got.platform, `linux/${process.arch}`);
    });

    it("runs as the unprivileged user of the image config", async () => {
      const r = await runInPod("whoami", [NODE_BIN, "-e", "console.log(process.getuid(), process.getgid())"]);
      assert.equal(r.exitCode, 0, r.stdout);
      assert.equal(r.stdout.trim(), "65532 65532");
    });
  });
});
