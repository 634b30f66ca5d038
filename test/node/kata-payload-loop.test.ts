// The agent process with a Kata-only SandboxConfig on this machine, against a real kube-apiserver and
// containerd 2: it installs the Kata payload pulled from the local registry, and its SandboxNode says
// Kata is installed but cannot run here, and why (NoUsableBackend, no handler); Revert removes the payload.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { payloadHostDir, payloadVersion } from "../../src/agent/payloads.js";
import { kataBlockers } from "../../src/agent/probe/kata-blockers.js";
import type { SandboxNode } from "../../src/api/sandboxnode.js";
import { writeArchive } from "../../src/images/build.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { desiredInputs } from "../../src/render/desired-node.js";
import { CONTAINERD_DROPIN } from "../../src/render/node/layout.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { testControlPlane } from "../harness/controlplane.js";
import { startContainerd, v3Config, type Containerd } from "../harness/containerd.js";
import { TEST_IMAGE } from "../harness/images.js";
import { buildTestKataPayload, mirrorKvmFacts } from "../harness/kata-payload.js";
import { mirrorHostsToml } from "../harness/node-config.js";
import { startRegistry, type Registry } from "../harness/registry.js";
import { cleanup, hostRoot } from "./helpers.js";

type SN = Omit<SandboxNode, "metadata"> & KubeObject;
const NODE = "kata-payload-node";
const MAIN = join(import.meta.dirname, "..", "..", "src", "agent", "main.ts");
const KATA = ["kata-qemu", "kata-clh", "kata-fc"] as const;

describe("agent process, Kata-only config where Kata cannot run: the payload is installed and the SandboxNode says why Kata cannot run", { concurrency: false }, () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let kube: KubeClient;
  let reg: Registry;
  let c: Containerd;
  let root: string;
  let work: string;
  let image: string;
  let agent: ChildProcess;
  let agentLog = "";

  const get = () => kube.get<SN>("SandboxNode", NODE);
  const cond = (o: SN, type: string) => o.status?.conditions?.find((x) => x.type === type);
  const kataDir = () => join(root, "opt/sandbox-operator/kata");

  before(async () => {
    cp = await testControlPlane();
    kube = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(kube);
    await kube.delete("SandboxNode", NODE);
    root = hostRoot();
    work = mkdtempSync(join(tmpdir(), "sandbox-operator-kata-loop-"));
    reg = await startRegistry();
    const built = await buildTestKataPayload("4.1.0-loop");
    const archive = join(work, "kata.oci.tar");
    writeArchive(built, archive);
    await reg.push(archive, "sandbox-operator-kata", { tag: built.tag });
    image = `localhost/sandbox-operator-kata@${built.digest}`;
    const certs = join(root, "etc/containerd/certs.d");
    mkdirSync(join(certs, "localhost"), { recursive: true });
    writeFileSync(join(certs, "localhost", "hosts.toml"), mirrorHostsToml("localhost", reg.host));
    c = await startContainerd({ version: "2", hostRoot: root, config: `${v3Config(root)}[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${certs}"\n` });
    mirrorKvmFacts(root);
    // What the controller writes for a Kata-only SandboxConfig on a node it has no probe of yet.
    const fromConfig = desiredInputs({ runtimes: { allowed: [...KATA] }, payloads: { kata: { image } } });
    await kube.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name: NODE }, spec: { action: "Apply", proceed: true, fromConfig } } as KubeObject);
    agent = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "--node-name", NODE, "--host-root", root, "--kubeconfig", cp.kubeconfigPath, "--cri-socket", c.socket, "--restart-strategy", "command", "--restart-command", c.restartScript, "--config-prefix", root, "--verify-image", TEST_IMAGE, "--health-port", "0", "--verify-with", "cri"],
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
    await reg?.stop();
    cleanup(root, work);
  });

  it("installs the Kata payload and reports Kata installed, not usable, with the reason; no handler, no runtime config", async () => {
    const o = await eventually("the SandboxNode's probe shows the installed Kata payload", async () => {
      const x = await get();
      return x.status?.probe?.backends.find((b) => b.backend === "kata-qemu")?.installed && x;
    }, 120_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    const probe = o.status!.probe!;
    for (const b of KATA) {
      const p = probe.backends.find((x) => x.backend === b)!;
      const blockers = kataBlockers(b, { kvmModule: probe.kvm.module, vhostVsock: probe.vhostVsock });
      assert.ok(blockers.length > 0, `this tier's machines cannot run Kata (docs/kata.md); ${b}: ${p.message}`);
      assert.deepEqual([p.installed, p.usable], [true, false], p.message);
      assert.equal(p.message, `installed from the Kata payload ${image} at ${payloadHostDir("kata", payloadVersion(image))}, but Kata cannot run here: ${blockers.join("; ")}`);
    }
    const ready = cond(o, "Ready")!;
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "NoUsableBackend");
    assert.match(ready.message, new RegExp(`the Kata payload ${image.replace(/[.]/g, "\\.")} is installed; status\\.probe says whether it can run here`));
    assert.deepEqual(o.status!.handlers ?? [], [], "no handler, none verified: the node is never labelled for Kata");
    assert.equal(o.status!.appliedHash ?? "", "");
    assert.deepEqual(readdirSync(kataDir()), [payloadVersion(image)]);
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false, "no runtime config written");
    assert.equal(c.restarts(), 0);
  });

  it("Revert removes the payload it installed", async () => {
    await kube.mergePatch("SandboxNode", NODE, { spec: { action: "Revert", proceed: true } });
    const o = await eventually("agent reports Reverted", async () => {
      const x = await get();
      return x.status?.phase === "Reverted" && x;
    }, 90_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog}`));
    assert.equal(cond(o, "Ready")?.reason, "Reverted");
    assert.equal(existsSync(kataDir()), false, "the Kata payload's directory goes with its last version");
    assert.equal(existsSync(join(root, "opt/sandbox-operator")), false, "nothing of ours is left under /opt, empty directories included");
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false);
  });
});
