// The agent process against a real kube-apiserver and a real containerd: the test plays the
// controller (writes SandboxNode.spec by hand), the agent probes, waits for the gate, applies,
// verifies a real gVisor sandbox, reports status, then reverts on request.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SandboxNode } from "../../src/api/sandboxnode.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { desiredNode, type DesiredInputs } from "../../src/render/desired-node.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { testControlPlane } from "../harness/controlplane.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { cleanup, hostRoot } from "./helpers.js";

type SN = Omit<SandboxNode, "metadata"> & KubeObject;
const NODE = "agent-loop-node";
const MAIN = join(import.meta.dirname, "..", "..", "src", "agent", "main.ts");

describe("agent process <-> SandboxNode on a real apiserver, real containerd 1.6 + gVisor", { concurrency: false }, () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let kube: KubeClient;
  let c: Containerd;
  let root: string;
  let payload: string;
  let agent: ChildProcess;
  let agentLog = "";
  let original: Buffer;

  const get = () => kube.get<SN>("SandboxNode", NODE);
  const cond = (o: SN, type: string) => o.status?.conditions?.find((x) => x.type === type);

  before(async () => {
    cp = await testControlPlane();
    kube = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(kube);
    await kube.delete("SandboxNode", NODE);
    root = hostRoot();
    payload = await gvisorPayload("1.6");
    c = await startContainerd({ version: "1.6", hostRoot: root });
    original = readFileSync(c.configPath);
    // What the controller writes first: Apply, gate closed, nothing desired yet.
    await kube.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name: NODE }, spec: { action: "Apply", proceed: false } } as KubeObject);
    agent = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "--node-name", NODE, "--host-root", root, "--kubeconfig", cp.kubeconfigPath, "--cri-socket", c.socket, "--restart-strategy", "command", "--restart-command", c.restartScript, "--payload-dir", payload, "--config-prefix", root, "--runsc-flag", "network=none", "--verify-image", TEST_IMAGE, "--health-port", "0", "--verify-with", "cri"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    agent.stdout!.on("data", (d: Buffer) => (agentLog += d.toString()));
    agent.stderr!.on("data", (d: Buffer) => (agentLog += d.toString()));
  });
  after(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill("SIGTERM");
      await new Promise((r) => agent.once("exit", r));
    }
    await kube?.delete("SandboxNode", NODE).catch(() => undefined);
    kube?.close();
    await cp?.stop();
    await c?.stop();
    cleanup(root, payload);
  });

  it("probes and waits for the rollout gate", async () => {
    const o = await eventually("agent reports Waiting", async () => {
      const x = await get();
      return x.status?.phase === "Waiting" && x;
    }, 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.equal(cond(o, "Ready")?.reason, "WaitingForRollout");
    assert.equal(o.status!.probe!.cri.kind, "containerd");
    assert.match(o.status!.probe!.cri.version!, /^1\.6/);
    assert.equal(o.status!.probe!.backends.find((b) => b.backend === "gvisor")!.usable, true);
    assert.ok(o.status!.heartbeatTime);
    assert.equal(c.restarts(), 0, "nothing changes before proceed");
  });

  it("applies when the controller sets desired + proceed: Ready=True Verified, gVisor kernel reported", async () => {
    await kube.mergePatch("SandboxNode", NODE, {
      spec: { proceed: true, desired: { hash: "loop000000000001", handlers: [{ name: "sandboxed", backend: "gvisor", general: true }, { name: "gvisor", backend: "gvisor" }] } },
    });
    const o = await eventually("agent reports Applied", async () => {
      const x = await get();
      return x.status?.phase === "Applied" && x;
    }, 90_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.equal(o.status!.appliedHash, "loop000000000001");
    assert.equal(cond(o, "Ready")?.status, "True");
    assert.equal(cond(o, "Ready")?.reason, "Verified");
    assert.equal(cond(o, "Ready")?.observedGeneration, o.metadata.generation);
    assert.equal(cond(o, "Degraded")?.status, "False");
    assert.deepEqual(o.status!.handlers!.map((h) => [h.name, h.verified]), [["sandboxed", true], ["gvisor", true]]);
    assert.match(o.status!.handlers![0]!.kernel!, /gVisor/);
    assert.match(readFileSync(c.configPath, "utf8"), /runtimes\.sandboxed\]/);
    assert.equal(c.restarts(), 1);
  });

  it("a broken handler (Kata shim path missing) -> Failed, Degraded=True VerificationFailed with the CRI error, previous config kept", async () => {
    const before = readFileSync(c.configPath);
    await kube.mergePatch("SandboxNode", NODE, {
      spec: { desired: { hash: "loop000000000002", handlers: [{ name: "sandboxed", backend: "gvisor", general: true }, { name: "gvisor", backend: "gvisor" }, { name: "kata", backend: "kata-qemu" }] } },
    });
    const o = await eventually("agent reports Failed", async () => {
      const x = await get();
      return x.status?.phase === "Failed" && x;
    }, 90_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.equal(o.status!.failedHash, "loop000000000002");
    assert.equal(o.status!.appliedHash, "loop000000000001", "the node still runs the verified hash");
    const degraded = cond(o, "Degraded")!;
    assert.equal(degraded.status, "True");
    assert.equal(degraded.reason, "VerificationFailed");
    assert.match(degraded.message, /handler kata: CRI RunPodSandbox: .*containerd-shim-kata-v2/);
    assert.equal(o.status!.handlers!.find((h) => h.name === "kata")!.verified, false);
    assert.ok(readFileSync(c.configPath).equals(before), "config.toml rolled back byte-for-byte");
    assert.equal(existsSync(join(root, "opt/sandbox-operator/etc/kata/configuration-kata.toml")), false, "the Kata file of the failed apply is gone");
  });

  it("reverts when the controller sets action Revert: Reverted, config.toml byte-identical", async () => {
    await kube.mergePatch("SandboxNode", NODE, { spec: { action: "Revert", proceed: true } });
    const o = await eventually("agent reports Reverted", async () => {
      const x = await get();
      return x.status?.phase === "Reverted" && x;
    }, 90_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.equal(o.status!.appliedHash, "");
    assert.equal(cond(o, "Ready")?.reason, "Reverted");
    assert.ok(readFileSync(c.configPath).equals(original));
    assert.equal(existsSync(join(root, "opt/sandbox-operator/bin/runsc")), false);
  });

  it("first-install form: no desired, fromConfig + proceed -> the agent computes desired from its probe and applies it; a later fromConfig change waits for a pinned desired", async () => {
    const fromConfig: DesiredInputs = { runtimes: { allowed: ["gvisor"] }, runtimeClassName: "sandboxed", logLevel: "info" };
    const restarts = c.restarts();
    await kube.mergePatch("SandboxNode", NODE, { spec: { action: "Apply", proceed: true, desired: null, fromConfig } });
    const o = await eventually("agent reports Applied", async () => {
      const x = await get();
      return x.status?.phase === "Applied" && x;
    }, 90_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    const expected = desiredNode(fromConfig, o.status!.probe!);
    assert.equal(o.spec.desired, undefined);
    assert.equal(o.status!.appliedHash, expected.hash, "the hash the controller computes from the reported probe");
    assert.deepEqual(o.status!.handlers!.map((h) => [h.name, h.verified]), [["sandboxed", true], ["gvisor", true]]);
    assert.match(readFileSync(c.configPath, "utf8"), /runtimes\.sandboxed\]/);
    assert.equal(c.restarts(), restarts + 1);

    await kube.mergePatch("SandboxNode", NODE, { spec: { fromConfig: { ...fromConfig, logLevel: "debug" } } });
    const waiting = await eventually("agent reports Waiting for a pinned desired", async () => {
      const x = await get();
      return x.status?.phase === "Waiting" && x;
    }, 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.equal(waiting.status!.appliedHash, expected.hash, "still runs what it applied");
    assert.match(cond(waiting, "Ready")!.message, /spec\.desired/);
    assert.equal(c.restarts(), restarts + 1, "nothing changed on the node");
  });

  it("a node without any CRI runtime reports Degraded=True RuntimeNotFound", async () => {
    const bare = hostRoot();
    const name = "agent-loop-bare-node";
    await kube.delete("SandboxNode", name);
    await kube.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name }, spec: { action: "Apply", proceed: false } } as KubeObject);
    const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--node-name", name, "--host-root", bare, "--kubeconfig", cp.kubeconfigPath, "--restart-strategy", "none", "--health-port", "0", "--verify-with", "cri", "--verify-image", TEST_IMAGE], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    p.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    p.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    try {
      const o = await eventually("agent reports RuntimeNotFound", async () => {
        const x = await kube.get<SN>("SandboxNode", name);
        return cond(x, "Degraded")?.reason === "RuntimeNotFound" && x;
      }, 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${log}`));
      assert.equal(cond(o, "Degraded")!.status, "True");
      assert.equal(o.status!.probe!.cri.kind, "unknown");
    } finally {
      // An agent that exited already (a bad flag) has no exit event left to wait for.
      if (p.exitCode === null && p.signalCode === null) {
        p.kill("SIGTERM");
        await new Promise((r) => p.once("exit", r));
      }
      await kube.delete("SandboxNode", name);
      cleanup(bare);
    }
  });
});
