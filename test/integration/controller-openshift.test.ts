// The real Controller (in-process) on a real apiserver with OpenShift's CRDs, an Infrastructure
// object for bare metal and a simulated Machine Config Operator: platform detection, the
// MachineConfig install on 3 of 5 workers, status through the controller, and the uninstall.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import { Controller } from "../../src/controller/manager.js";
import { machineConfigContent, machineConfigHandlers, RHCOS_LAYOUT } from "../../src/controller/desired-machineconfig.js";
import { renderCrioDropIn } from "../../src/render/node/crio-dropin.js";
import { decodeDataUrl, type MachineConfig } from "../../src/openshift/render-machineconfig.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import { installCrds, node } from "../harness/cluster.js";
import { McoSimulator, openShiftCrds } from "../harness/mco-simulator.js";
import { cond, eventually, FINALIZER, getConfig, NS, ourNodeLabels, runtimeLabels, setupEnv, type Env } from "./controller-helpers.js";

const RL = "node-role.kubernetes.io/sandboxed";
const MC = "50-sandbox-operator-sandboxed";
const DROPIN = "/etc/crio/crio.conf.d/50-sandbox-operator.conf";
type RC = KubeObject & { handler: string; scheduling: { nodeSelector: Record<string, string> } };

describe("controller on OpenShift (bare metal, simulated MCO): MachineConfig path end to end", () => {
  let env: Env;
  let mco: McoSimulator;
  let ctlClient: KubeClient;
  let controller: Controller;
  const workers = ["w1", "w2", "w3", "w4", "w5"];
  const spec: Partial<SandboxConfigSpec> = { nodeSelector: { matchLabels: { sandbox: "yes" } }, runtimes: { allowed: ["kata-qemu", "gvisor"] }, rollout: { maxUnavailable: 1 } };

  let fixtureCrds: ReturnType<typeof openShiftCrds> = [];

  before(async () => {
    env = await setupEnv();
    const { client } = env;
    fixtureCrds = openShiftCrds();
    await installCrds(client, fixtureCrds);
    mco = await McoSimulator.create(env.cp.kubeConfig());
    await mco.installStock();
    await client.create({ apiVersion: "config.openshift.io/v1", kind: "Infrastructure", metadata: { name: "cluster" }, spec: { platformSpec: { type: "BareMetal" } } } as AnyObject);
    await client.mergePatch("Infrastructure", "cluster", { status: { platform: "BareMetal", platformStatus: { type: "BareMetal" }, controlPlaneTopology: "HighlyAvailable", infrastructureTopology: "HighlyAvailable", infrastructureName: "lab-x7k2p" } }, { subresource: "status" });
    for (const [i, n] of workers.entries()) await client.create(node(n, { "node-role.kubernetes.io/worker": "", ...(i < 3 ? { sandbox: "yes" } : {}) }));
    await mco.render();
    for (const n of workers) await mco.bootNode(n);
    await mco.syncStatus();
    ctlClient = await KubeClient.fromKubeConfig(env.cp.kubeConfig(), { fieldManager: "sandbox-operator" });
    controller = new Controller({ client: ctlClient, namespace: NS, podRecheckMs: 300, statusIntervalMs: 100, retryBaseMs: 100, retryMaxMs: 2000, mcoRecheckMs: 200 });
    await controller.start();
  });
  after(async () => {
    // Stop everything even when set-up failed half way, or the file hangs until the test timeout.
    try {
      await controller?.stop();
      ctlClient?.close();
      // A shared control plane (SANDBOX_TEST_KUBECONFIG) outlives this file: leave it as found.
      if (env) {
        for (const n of workers) await env.client.delete("Node", n);
        await env.client.delete("Infrastructure", "cluster");
        for (const crd of fixtureCrds) await env.client.delete("CustomResourceDefinition", crd.metadata.name);
      }
    } finally {
      mco?.close();
      await env?.stop();
    }
  });

  it("installs through a pool + MachineConfig, labels nodes only once the MCO is done, Ready 3/3; delete reverses it", async () => {
    const { client } = env;
    await client.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec } as AnyObject);

    // Pool and MachineConfig; the Ignition CRI-O drop-in is the agent's own renderer's output.
    const mc = await eventually("MachineConfig created", () => client.getOrNull<MachineConfig & KubeObject>("MachineConfig", MC));
    const pool = await client.get<AnyObject & { spec: { nodeSelector: unknown } }>("MachineConfigPool", "sandboxed");
    assert.deepEqual(pool.spec.nodeSelector, { matchLabels: { [RL]: "" } });
    const stored = (await getConfig(client))!;
    const files = Object.fromEntries(mc.spec.config.storage.files.map((f) => [f.path, decodeDataUrl(f.contents.source)]));
    const expected = renderCrioDropIn(machineConfigHandlers(stored.spec), { layout: RHCOS_LAYOUT, allowedAnnotations: [] });
    assert.equal(files[DROPIN], expected, "Ignition carries renderCrioDropIn's output byte for byte");
    assert.match(expected, /\[crio\.runtime\.runtimes\.sandboxed\][^[]*runtime_type = "vm"/);
    assert.match(expected, /\[crio\.runtime\.runtimes\.kata\]/);
    assert.doesNotMatch(expected, /gvisor/, "the extension ships Kata only: no gVisor handler on this path");
    for (const k of machineConfigContent(stored.spec).kataFiles) assert.equal(files[k.path], k.content, `${k.path} as the agent's Kata renderer writes it`);
    assert.deepEqual(mc.spec.extensions, ["sandboxed-containers"]);

    // RuntimeClasses come from the one builder, restricted to kata-qemu.
    const rcs = await eventually("RuntimeClasses published", async () => {
      const items = (await client.list<RC>("RuntimeClass")).items;
      return items.length === 2 ? items : null;
    });
    assert.deepEqual(rcs.map((r) => `${r.metadata.name}:${r.handler}:${Object.keys(r.scheduling.nodeSelector)[0]}`).sort(), ["kata:kata:sandboxing.dev/runtime.kata", "sandboxed:sandboxed:sandboxing.dev/runtime.sandboxed"]);

    // The MCO renders the pool with our MachineConfig: the selected nodes join, none gets a runtime label yet.
    await mco.render();
    await mco.syncStatus();
    await eventually("w1-w3 join the pool", async () => (await Promise.all(["w1", "w2", "w3"].map(async (n) => (await client.get<KubeObject>("Node", n)).metadata.labels?.[RL] === ""))).every(Boolean));
    for (const n of ["w4", "w5"]) assert.equal((await client.get<KubeObject>("Node", n)).metadata.labels?.[RL], undefined, `${n} is not selected`);
    await mco.render();
    assert.deepEqual(await mco.startUpdates(1), ["w1"]);
    await mco.syncStatus();
    await eventually("w1 Progressing in status", async () => (await getConfig(client))?.status?.nodes?.find((n) => n.name === "w1")?.state === "Progressing");
    for (const n of ["w1", "w2", "w3"]) assert.deepEqual(await runtimeLabels(client, n), {}, `no runtime label on ${n} before the MCO reports it done`);

    await mco.finish("w1");
    await mco.syncStatus();
    await eventually("w1 labelled once done", async () => (await runtimeLabels(client, "w1"))["sandboxing.dev/runtime.sandboxed"] === "true");
    assert.deepEqual(await runtimeLabels(client, "w2"), {}, "w2 still waits for the MCO");

    const ready = await eventually("Ready 3/3", async () => {
      await mco.tick();
      await mco.finishAll();
      await mco.syncStatus();
      const c = await getConfig(client);
      return cond(c, "Ready")?.status === "True" && c!.status?.observedGeneration === c!.metadata.generation ? c : null;
    }, 30_000);
    assert.deepEqual(ready.status?.counts, { selected: 3, ready: 3, progressing: 0, degraded: 0, uninstalling: 0 });
    assert.deepEqual(ready.metadata.finalizers, [FINALIZER]);
    const platform = ready.status!.platform!;
    assert.deepEqual([platform.kind, platform.infrastructure, platform.installMethod, platform.machineConfigPool], ["OpenShift", "BareMetal", "MachineConfig", "sandboxed"]);
    assert.match(platform.message ?? "", /Machine Config Operator configures the nodes/);
    assert.deepEqual(ready.status?.runtimeClasses, ["kata", "sandboxed"]);
    assert.deepEqual(ready.status?.nodes?.map((n) => [n.name, n.state]), [["w1", "Ready"], ["w2", "Ready"], ["w3", "Ready"]]);
    for (const c of ready.status?.conditions ?? []) {
      assert.equal(c.observedGeneration, ready.metadata.generation, `${c.type} carries observedGeneration`);
      assert.match(c.lastTransitionTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    assert.equal(cond(ready, "Ready")?.reason, "AllNodesReady");
    assert.equal(cond(ready, "Degraded")?.status, "False");
    for (const n of ["w1", "w2", "w3"]) assert.deepEqual(await ourNodeLabels(client, n), { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.kata": "true" }, `${n}: runtime labels, no agent label (the MCO configures it)`);
    for (const n of ["w4", "w5"]) assert.deepEqual(await ourNodeLabels(client, n), {});
    assert.deepEqual((await client.list("SandboxNode")).items, [], "no SandboxNode on the MachineConfig path");

    // Uninstall: runtime labels off, MachineConfig deleted; pool, role labels and RuntimeClasses stay until the MCO rolled back.
    await client.delete("SandboxConfig", "cluster");
    await eventually("MachineConfig deleted", async () => (await client.getOrNull("MachineConfig", MC)) === null);
    for (const n of ["w1", "w2", "w3"]) assert.deepEqual(await runtimeLabels(client, n), {}, `${n}: runtime labels go first`);
    assert.ok(await client.getOrNull("MachineConfigPool", "sandboxed"), "the pool stays until its nodes rolled back");
    assert.equal((await client.list("RuntimeClass")).items.length, 2, "RuntimeClasses go last");
    const uninstalling = await getConfig(client);
    assert.deepEqual(uninstalling?.metadata.finalizers, [FINALIZER]);

    await eventually("SandboxConfig gone", async () => {
      await mco.tick();
      await mco.finishAll();
      await mco.syncStatus();
      return (await getConfig(client)) === null;
    }, 30_000);
    assert.equal(await client.getOrNull("MachineConfigPool", "sandboxed"), null, "pool removed");
    assert.equal(await client.getOrNull("MachineConfig", MC), null);
    assert.deepEqual((await client.list("RuntimeClass")).items, [], "no RuntimeClass left");
    for (const n of workers) {
      const labels = (await client.get<KubeObject>("Node", n)).metadata.labels ?? {};
      assert.equal(labels[RL], undefined, `${n} left our pool`);
      assert.deepEqual(await ourNodeLabels(client, n), {}, `nothing of ours on ${n}`);
    }
  });
});
