// The agent as shipped: the operator image (built without Docker) unpacked and its own files run
// the way the DaemonSet runs them (chrooted, read-only root, hostPID /proc, the host root at
// /host) against a real kube-apiserver and a real containerd 1.6 serving CRI under that host root.
import assert from "node:assert/strict";
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SandboxNode } from "../../src/api/sandboxnode.js";
import { buildOperatorImage, writeArchive } from "../../src/images/build.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { AGENT_HOST_ROOT, ENTRYPOINTS, NODE_BIN } from "../../src/manifests/names.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { testControlPlane } from "../harness/controlplane.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { TEST_IMAGE } from "../harness/images.js";
import { runFromImage, spawnFromImage, unpackImage, type UnpackedImage } from "../harness/image-rootfs.js";
import { cleanup, hostRoot } from "./helpers.js";

type SN = Omit<SandboxNode, "metadata"> & KubeObject;
const NODE = "image-agent-node";

describe("the agent from the operator image's files, as its DaemonSet pod runs it", { concurrency: false }, () => {
  let work: string;
  let image: UnpackedImage;
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let kube: KubeClient;
  let c: Containerd;
  let root: string;
  let agent: ChildProcess | undefined;
  let agentLog = "";

  const get = () => kube.get<SN>("SandboxNode", NODE);
  const kubeDir = () => dirname(cp.kubeconfigPath);
  const inPod = (args: string[]) => [NODE_BIN, ENTRYPOINTS.agent, "--node-name", NODE, "--host-root", AGENT_HOST_ROOT, "--kubeconfig", `/kube/${basename(cp.kubeconfigPath)}`, "--health-port", "0", "--verify-with", "cri", "--verify-image", TEST_IMAGE, ...args];
  const binds = () => ({ [root]: AGENT_HOST_ROOT, [kubeDir()]: "/kube" });

  function startAgent(args: string[]): void {
    agentLog = "";
    agent = spawnFromImage(image, inPod(args), { binds: binds() });
    agent.stdout!.on("data", (d: Buffer) => (agentLog += d.toString()));
    agent.stderr!.on("data", (d: Buffer) => (agentLog += d.toString()));
  }

  async function stopAgent(): Promise<void> {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      agent.kill("SIGTERM");
      await new Promise((r) => agent!.once("exit", r));
    }
    agent = undefined;
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "sandbox-operator-image-agent-"));
    const built = buildOperatorImage({ root: repoRoot(), log: () => {} });
    const archive = join(work, "image.oci.tar");
    writeArchive(built, archive);
    image = unpackImage(archive, join(work, "unpacked"));
    cp = await testControlPlane();
    kube = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(kube);
    await kube.delete("SandboxNode", NODE);
    root = hostRoot();
    // Where a node serves CRI: the agent finds it under its host root without --cri-socket.
    c = await startContainerd({ version: "1.6", hostRoot: root, socket: join(root, "run/containerd/containerd.sock") });
    await kube.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name: NODE }, spec: { action: "Apply", proceed: false } } as KubeObject);
  });
  after(async () => {
    await stopAgent();
    await kube?.delete("SandboxNode", NODE).catch(() => undefined);
    kube?.close();
    await cp?.stop();
    await c?.stop();
    if (root) cleanup(root);
    image?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("nsenter from the image runs (util-linux)", async () => {
    const r = await runFromImage(image, ["/usr/bin/nsenter", "--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^nsenter from util-linux \d/);
  });

  it("starts, loads the CRI proto from the image and reports the containerd it asked over CRI", async () => {
    // --config-prefix: this test's containerd sees the host root's files under their temp path.
    startAgent(["--restart-strategy", "none", "--config-prefix", root]);
    const o = await eventually("the agent from the image reports Waiting", async () => {
      if (agent!.exitCode !== null) assert.fail(`the agent exited ${agent!.exitCode}:\n${agentLog}`);
      const x = await get();
      return x.status?.phase === "Waiting" && x;
    }, 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    const cri = o.status!.probe!.cri;
    assert.equal(cri.kind, "containerd");
    assert.match(cri.version ?? "", /^1\.6\./, "the version came from CRI Version (binaries alone give none)");
    assert.equal(cri.socket, `${AGENT_HOST_ROOT}/run/containerd/containerd.sock`);
    // Found in the host's /proc (hostPID), its --config mapped to a host path.
    assert.equal(cri.configPath, "/etc/containerd/config.toml");
    assert.match(cri.source ?? "", new RegExp(`^containerd pid \\d+ \\(--config ${root}/etc/containerd/config.toml, --address ${root}/run/containerd/containerd.sock\\) the only containerd serving a socket under the host root; config /etc/containerd/config.toml from its --config; CRI answered on /host/run/containerd/containerd.sock$`), cri.source);
    await stopAgent();
  });

  it("restarts through the image's nsenter and the host's systemctl; where that fails (PID 1 not systemd here) it reports Degraded, restores the files and keeps running", async () => {
    const original = readFileSync(c.configPath);
    // This process stands in for the host's PID 1 (this VM's own PID 1 cannot be entered).
    startAgent(["--restart-strategy", "systemd", "--host-pid", String(process.pid), "--config-prefix", root, "--retry-backoff", "60"]);
    await kube.mergePatch("SandboxNode", NODE, { spec: { proceed: true, desired: { hash: "image0000000001", handlers: [{ name: "sandboxed", backend: "gvisor", general: true }] } } });
    const o = await eventually("Degraded RuntimeRestartFailed", async () => {
      if (agent!.exitCode !== null) assert.fail(`the agent exited ${agent!.exitCode}:\n${agentLog}`);
      const x = await get();
      return x.status?.conditions?.find((k) => k.type === "Degraded" && k.reason === "RuntimeRestartFailed") && x;
    }, 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    const degraded = o.status!.conditions!.find((k) => k.type === "Degraded")!;
    assert.equal(degraded.status, "True");
    assert.equal(o.status!.conditions!.find((k) => k.type === "Progressing")!.status, "False");
    // systemctl's own words: the host's systemctl ran, in the host's namespaces, through the image's nsenter.
    assert.match(degraded.message, new RegExp(`^host PID ${process.pid} is not systemd \\(System has not been booted with systemd as init system`), degraded.message);
    assert.ok(readFileSync(c.configPath).equals(original), "config.toml restored byte-for-byte");
    assert.equal(agent!.exitCode, null, "no crash loop: the agent keeps running");
    await stopAgent();
  });
});
