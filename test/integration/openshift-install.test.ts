// The MachineConfig path on a real kube-apiserver with OpenShift's CRDs; a simulator plays the
// Machine Config Operator. Install on 3 of 5 workers, degraded node, unrelated worker update
// (OSC #596), content change, uninstall blocked by a sandboxed pod, compact cluster.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import type { SandboxConfig } from "../../src/api/index.js";
import { testControlPlane } from "../harness/controlplane.js";
import { installCrds, node } from "../harness/cluster.js";
import { McoSimulator, openShiftCrds } from "../harness/mco-simulator.js";
import { reconcileOpenShift, type OpenShiftReconcileResult } from "../../src/openshift/reconcile.js";
import { decodeDataUrl, type MachineConfig, type MachineConfigContent } from "../../src/openshift/render-machineconfig.js";

const DROP_IN = [
  "[crio.runtime.runtimes.sandboxed]",
  'runtime_path = "/usr/bin/containerd-shim-kata-v2"',
  'runtime_type = "vm"',
  'runtime_root = "/run/vc"',
  'runtime_config_path = "/etc/kata-containers/sandboxed/configuration.toml"',
  "privileged_without_host_devices = true",
  "",
  "[crio.runtime.runtimes.kata]",
  'runtime_path = "/usr/bin/containerd-shim-kata-v2"',
  'runtime_type = "vm"',
  "",
].join("\n");
const KATA = '[hypervisor.qemu]\npath = "/usr/libexec/qemu-kiwi"\nkernel_params = ""\ndefault_vcpus = 1\n';
const content = (dropIn = DROP_IN): MachineConfigContent => ({ crioDropIn: dropIn, kataFiles: [{ path: "/etc/kata-containers/sandboxed/configuration.toml", content: KATA }] });

type Node = KubeObject;
const RL = "node-role.kubernetes.io/sandboxed";

describe("OpenShift MachineConfig path on a real apiserver (simulated MCO)", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let mco: McoSimulator;
  let config: SandboxConfig;

  const selected = async (selector = "sandbox=yes") => (await client.list<Node>("Node", { labelSelector: selector })).items;
  const labels = async (name: string) => (await client.get<Node>("Node", name)).metadata.labels ?? {};
  const runtimeLabels = async (name: string) => Object.keys(await labels(name)).filter((k) => k.startsWith("sandboxing.dev/runtime.")).sort();
  const reconcile = async (opts: { uninstall?: boolean; content?: MachineConfigContent; selector?: string } = {}): Promise<OpenShiftReconcileResult> =>
    reconcileOpenShift(client, config, await selected(opts.selector), { content: opts.content ?? content(), uninstall: opts.uninstall, requeueAfterMs: 5000 });
  const states = (r: OpenShiftReconcileResult) => Object.fromEntries(r.nodes.map((n) => [n.name, n.state]));
  const cond = (r: OpenShiftReconcileResult, type: string) => r.conditions.find((c) => c.type === type)!;

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    mco = await McoSimulator.create(cp.kubeConfig());
    await installCrds(client);
    await installCrds(client, openShiftCrds());
    await mco.installStock();
    for (let i = 1; i <= 5; i++) await client.create(node(`w${i}`, { "node-role.kubernetes.io/worker": "", ...(i <= 3 ? { sandbox: "yes" } : {}) }));
    for (let i = 1; i <= 3; i++) await client.create(node(`m${i}`, { "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/master": "", "node-role.kubernetes.io/control-plane": "", compact: "yes" }));
    await mco.render();
    for (const n of ["w1", "w2", "w3", "w4", "w5", "m1", "m2", "m3"]) await mco.bootNode(n);
    await mco.syncStatus();
    await client.apply({
      apiVersion: "sandboxing.dev/v1alpha1",
      kind: "SandboxConfig",
      metadata: { name: "cluster" },
      spec: { nodeSelector: { matchLabels: { sandbox: "yes" } }, runtimes: { allowed: ["kata-qemu", "gvisor"] }, installMethod: "MachineConfig", rollout: { maxUnavailable: 1 } },
    });
    config = await client.get<SandboxConfig>("SandboxConfig", "cluster");
  });
  after(async () => {
    // Stop everything even when set-up failed half way, or the file hangs until the test timeout.
    try {
      // A shared control plane (SANDBOX_TEST_KUBECONFIG) outlives this file: leave it as found.
      if (client) {
        for (const n of ["w1", "w2", "w3", "w4", "w5", "m1", "m2", "m3"]) await client.delete("Node", n);
        await client.delete("SandboxConfig", "cluster");
        for (const rc of (await client.list("RuntimeClass")).items) await client.delete("RuntimeClass", rc.metadata.name);
        for (const crd of openShiftCrds()) await client.delete("CustomResourceDefinition", crd.metadata.name);
      }
    } finally {
      mco?.close();
      client?.close();
      await cp?.stop();
    }
  });

  it("installs on 3 of 5 workers: pool, MachineConfig, labels only once the MCO reports done", async () => {
    const r1 = await reconcile();
    const pool = await client.get<AnyObject & { spec: Record<string, unknown> }>("MachineConfigPool", "sandboxed");
    assert.deepEqual(pool.spec.machineConfigSelector, { matchExpressions: [{ key: "machineconfiguration.openshift.io/role", operator: "In", values: ["worker", "sandboxed"] }] });
    assert.deepEqual(pool.spec.nodeSelector, { matchLabels: { [RL]: "" } });
    assert.equal(pool.spec.maxUnavailable, 1);
    const mc = await client.get<MachineConfig & KubeObject>("MachineConfig", "50-sandbox-operator-sandboxed");
    assert.equal(mc.metadata.labels!["machineconfiguration.openshift.io/role"], "sandboxed");
    assert.deepEqual(mc.spec.extensions, ["sandboxed-containers"]);
    const files = Object.fromEntries(mc.spec.config.storage.files.map((f) => [f.path, f]));
    assert.equal(decodeDataUrl(files["/etc/crio/crio.conf.d/50-sandbox-operator.conf"]!.contents.source), DROP_IN, "Ignition carries the CRI-O drop-in byte for byte");
    assert.equal(decodeDataUrl(files["/etc/kata-containers/sandboxed/configuration.toml"]!.contents.source), KATA);
    for (const f of Object.values(files)) assert.deepEqual([f.mode, f.overwrite], [0o644, true]);

    for (const n of ["w1", "w2", "w3"]) assert.equal((await labels(n))[RL], undefined, `${n} waits until the pool has rendered our MachineConfig`);
    assert.deepEqual(states(r1), { w1: "Pending", w2: "Pending", w3: "Pending" });
    assert.equal(r1.nodes[0]!.reason, "JoiningPool");
    await mco.render();
    const r1b = await reconcile();
    for (const n of ["w1", "w2", "w3"]) assert.equal((await labels(n))[RL], "", `${n} joins the pool`);
    for (const n of ["w4", "w5"]) assert.equal((await labels(n))[RL], undefined, `${n} is not selected`);
    assert.deepEqual(states(r1b), { w1: "Pending", w2: "Pending", w3: "Pending" });
    assert.equal(r1b.nodes[0]!.reason, "WaitingForRender", "joined; the MCO has not moved it yet");
    for (const n of ["w1", "w2", "w3"]) assert.deepEqual(await runtimeLabels(n), [], "no runtime label before the MCO is done");
    const classes = (await client.list<KubeObject & { handler: string; scheduling: { nodeSelector: Record<string, string> } }>("RuntimeClass")).items;
    assert.deepEqual(classes.map((c) => `${c.metadata.name}:${c.handler}:${Object.keys(c.scheduling.nodeSelector)[0]}`).sort(), ["kata:kata:sandboxing.dev/runtime.kata", "sandboxed:sandboxed:sandboxing.dev/runtime.sandboxed"]);
    assert.equal(r1.done, false);
    assert.equal(r1.requeueAfterMs, 5000);
    assert.equal(r1.platform.machineConfigPool, "sandboxed");

    // An admin pauses the pool to pick the reboot window; our apply must not unpause it.
    await client.mergePatch("MachineConfigPool", "sandboxed", { spec: { paused: true } });
    await mco.syncStatus();
    const paused = await reconcile();
    assert.equal((await client.get<AnyObject & { spec: { paused?: boolean } }>("MachineConfigPool", "sandboxed")).spec.paused, true, "still paused after our apply");
    assert.match(cond(paused, "Progressing").message, /paused by an admin/);
    assert.deepEqual(await mco.startUpdates(), [], "the MCO leaves a paused pool alone");
    await client.mergePatch("MachineConfigPool", "sandboxed", { spec: { paused: false } });

    // The MCO starts one node at a time, as maxUnavailable says.
    assert.deepEqual(await mco.startUpdates(1), ["w1"]);
    await mco.syncStatus();
    const r2 = await reconcile();
    assert.deepEqual(states(r2), { w1: "Progressing", w2: "Pending", w3: "Pending" });
    assert.equal(r2.nodes[0]!.reason, "MachineConfigUpdating");
    assert.deepEqual(await runtimeLabels("w1"), []);

    await mco.finish("w1");
    await mco.startUpdates();
    await mco.syncStatus();
    const r3 = await reconcile();
    assert.deepEqual(states(r3), { w1: "Ready", w2: "Progressing", w3: "Progressing" });
    assert.deepEqual(await runtimeLabels("w1"), ["sandboxing.dev/runtime.kata", "sandboxing.dev/runtime.sandboxed"]);
    assert.deepEqual(await runtimeLabels("w2"), []);
    assert.deepEqual(r3.counts, { selected: 3, ready: 1, progressing: 2, degraded: 0, uninstalling: 0 });
    assert.equal(cond(r3, "Ready").status, "False");
    assert.equal(cond(r3, "Progressing").status, "True");
  });

  it("surfaces a degraded node with the MCO's reason, and recovers", async () => {
    const why = "failed to drain node w3 after 1h: error when evicting pods/\"db-0\" -n \"shop\": Cannot evict pod as it would violate the pod's disruption budget.";
    await mco.degrade("w3", why);
    await mco.syncStatus();
    const r = await reconcile();
    const w3 = r.nodes.find((n) => n.name === "w3")!;
    assert.equal(w3.state, "Degraded");
    assert.equal(w3.reason, "MachineConfigDegraded");
    assert.ok(w3.message!.includes(why), w3.message);
    assert.equal(cond(r, "Degraded").status, "True");
    assert.match(cond(r, "Degraded").message, /^w3: .*disruption budget/);
    assert.equal(r.counts.degraded, 1);
    assert.deepEqual(await runtimeLabels("w3"), []);

    await mco.annotate("w3", { "machineconfiguration.openshift.io/state": "Working", "machineconfiguration.openshift.io/reason": "" });
    await mco.finishAll();
    await mco.syncStatus();
    const done = await reconcile();
    assert.equal(done.done, true, JSON.stringify(done.nodes));
    assert.equal(done.requeueAfterMs, undefined);
    assert.deepEqual(done.counts, { selected: 3, ready: 3, progressing: 0, degraded: 0, uninstalling: 0 });
    assert.deepEqual([cond(done, "Ready").status, cond(done, "Ready").reason], ["True", "AllNodesReady"]);
    assert.equal(cond(done, "Degraded").status, "False");
    assert.match(cond(done, "Progressing").message, /pool sandboxed: 3\/3 updated, 0 degraded$/);
    // The result is shaped for SandboxConfig.status: the apiserver's schema accepts it as is.
    const now = new Date().toISOString();
    const status = { observedGeneration: config.metadata.generation, platform: done.platform, counts: done.counts, nodes: done.nodes, runtimeClasses: done.runtimeClasses, conditions: done.conditions.map((c) => ({ ...c, lastTransitionTime: now, observedGeneration: config.metadata.generation })) };
    await client.mergePatch("SandboxConfig", "cluster", { status }, { subresource: "status" });
    const stored = await client.get<SandboxConfig>("SandboxConfig", "cluster");
    assert.deepEqual(stored.status?.counts, done.counts);
    assert.equal(stored.status?.platform?.machineConfigPool, "sandboxed");
    assert.equal(stored.status?.nodes?.length, 3);
    for (const n of ["w1", "w2", "w3"]) assert.deepEqual(await runtimeLabels(n), ["sandboxing.dev/runtime.kata", "sandboxing.dev/runtime.sandboxed"]);
    for (const n of ["w4", "w5", "m1"]) assert.deepEqual(await runtimeLabels(n), []);
  });

  it("OSC #596: an unrelated update of the worker pool is not taken for ours", async () => {
    await client.apply({
      apiVersion: "machineconfiguration.openshift.io/v1",
      kind: "MachineConfig",
      metadata: { name: "99-worker-chrony", labels: { "machineconfiguration.openshift.io/role": "worker" } },
      spec: { config: { ignition: { version: "3.2.0" }, storage: { files: [{ path: "/etc/chrony.conf", mode: 420, overwrite: true, contents: { source: "data:,pool%20ntp.example" } }] } } },
    });
    const started = await mco.tick();
    assert.ok(started.includes("w4") && started.includes("w1"), `the MCO updates worker and our pool: ${started}`);
    const pool = await client.get<AnyObject & { status: { conditions: Array<{ type: string; status: string }> } }>("MachineConfigPool", "sandboxed");
    assert.equal(pool.status.conditions.find((c) => c.type === "Updating")?.status, "True", "our pool is updating, for someone else's change");
    const r = await reconcile();
    assert.deepEqual(states(r), { w1: "Ready", w2: "Ready", w3: "Ready" });
    assert.match(r.nodes[0]!.message!, /for another change/);
    assert.equal(r.done, true);
    for (const n of ["w1", "w2", "w3"]) assert.equal((await runtimeLabels(n)).length, 2, `${n} keeps its labels`);
    await mco.finishAll();
    await mco.syncStatus();
    const after = await reconcile();
    assert.equal(after.done, true);
  });

  it("a change of our files is a new rollout: the old rendered config no longer counts", async () => {
    const changed = content(DROP_IN + "# changed\n");
    await reconcile({ content: changed });
    await mco.render();
    const r = await reconcile({ content: changed });
    assert.deepEqual(states(r), { w1: "Pending", w2: "Pending", w3: "Pending" }, "the MCO has not picked the nodes yet");
    assert.equal(r.done, false);
    assert.deepEqual(await runtimeLabels("w1"), []);
    await mco.settle();
    const done = await reconcile({ content: changed });
    assert.equal(done.done, true);
    assert.equal((await runtimeLabels("w1")).length, 2);
  });

  it("a node leaving the selection: labels off, leaves the pool only once its sandboxed pod is gone", async () => {
    const changed = content(DROP_IN + "# changed\n");
    await client.create({ apiVersion: "v1", kind: "Pod", metadata: { name: "tenant-a", namespace: "default" }, spec: { nodeName: "w3", runtimeClassName: "kata", containers: [{ name: "c", image: "registry.invalid/app:1" }] } } as AnyObject);
    await client.mergePatch("Node", "w3", { metadata: { labels: { sandbox: null } } });
    const r = await reconcile({ content: changed });
    assert.deepEqual(r.blockingPods, ["default/tenant-a on w3"]);
    assert.equal(cond(r, "Progressing").reason, "NodeRemovalBlockedByPods");
    assert.equal(r.done, false);
    assert.deepEqual(await runtimeLabels("w3"), [], "no new sandboxed pod lands on w3");
    assert.equal((await labels("w3"))[RL], "", "w3 stays in the pool while the pod runs");

    await client.call("DELETE", "/api/v1/namespaces/default/pods/tenant-a", { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 });
    const r2 = await reconcile({ content: changed });
    assert.equal((await labels("w3"))[RL], undefined, "w3 leaves the pool");
    assert.equal(r2.done, true);
    await mco.settle();
    const w3 = await client.get<Node>("Node", "w3");
    assert.match(w3.metadata.annotations!["machineconfiguration.openshift.io/currentConfig"]!, /^rendered-worker-/, "the MCO moved w3 back to the worker pool");

    await client.mergePatch("Node", "w3", { metadata: { labels: { sandbox: "yes" } } });
    await reconcile({ content: changed });
    await mco.settle();
    assert.equal((await reconcile({ content: changed })).done, true);
  });

  it("uninstalls in reverse order, blocked while a sandboxed pod runs", async () => {
    const changed = content(DROP_IN + "# changed\n");
    await client.create({ apiVersion: "v1", kind: "Pod", metadata: { name: "untrusted", namespace: "default" }, spec: { nodeName: "w2", runtimeClassName: "sandboxed", containers: [{ name: "c", image: "registry.invalid/app:1" }] } } as AnyObject);
    const blocked = await reconcile({ uninstall: true, content: changed });
    assert.equal(blocked.phase, "Blocked");
    assert.deepEqual(blocked.blockingPods, ["default/untrusted on w2"]);
    assert.match(cond(blocked, "Progressing").message, /default\/untrusted on w2.*whenPodsRun/);
    assert.equal(cond(blocked, "Progressing").reason, "UninstallBlockedByPods");
    for (const n of ["w1", "w2", "w3"]) assert.deepEqual(await runtimeLabels(n), [], "labels come off first");
    assert.ok(await client.getOrNull("MachineConfig", "50-sandbox-operator-sandboxed"), "MachineConfig stays while the pod runs");
    assert.ok(await client.getOrNull("RuntimeClass", "sandboxed"));
    const again = await reconcile({ uninstall: true, content: changed });
    assert.equal(again.phase, "Blocked", "still blocked on the next pass");

    await client.call("DELETE", "/api/v1/namespaces/default/pods/untrusted", { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 });
    const r1 = await reconcile({ uninstall: true, content: changed });
    assert.equal(r1.phase, "Uninstalling");
    assert.equal(await client.getOrNull("MachineConfig", "50-sandbox-operator-sandboxed"), null, "MachineConfig removed");
    assert.ok(await client.getOrNull("MachineConfigPool", "sandboxed"), "pool stays until the nodes rolled back");
    assert.equal((await labels("w1"))[RL], "", "nodes stay in the pool while it rolls back");
    assert.deepEqual(r1.nodes.map((n) => n.reason), ["RollingBack", "RollingBack", "RollingBack"]);

    await mco.tick();
    const r2 = await reconcile({ uninstall: true, content: changed });
    assert.equal(r2.phase, "Uninstalling");
    assert.ok(await client.getOrNull("RuntimeClass", "sandboxed"), "RuntimeClasses go last");
    await mco.finishAll();
    await mco.syncStatus();
    const r3 = await reconcile({ uninstall: true, content: changed });
    assert.match(cond(r3, "Progressing").message, /waiting for 3 node\(s\) to leave pool sandboxed/);
    for (const n of ["w1", "w2", "w3"]) assert.equal((await labels(n))[RL], undefined, `${n} left the pool`);
    assert.ok(await client.getOrNull("MachineConfigPool", "sandboxed"));

    await mco.settle();
    const r4 = await reconcile({ uninstall: true, content: changed });
    assert.equal(r4.phase, "Uninstalled");
    assert.equal(r4.done, true);
    assert.equal(await client.getOrNull("MachineConfigPool", "sandboxed"), null);
    assert.deepEqual((await client.list("RuntimeClass")).items.map((c) => c.metadata.name), []);
    const again2 = await reconcile({ uninstall: true, content: changed });
    assert.equal(again2.phase, "Uninstalled", "idempotent");
  });

  it("refuses a selection mixing masters and workers, changing nothing", async () => {
    await client.mergePatch("Node", "m1", { metadata: { labels: { sandbox: "yes" } } });
    try {
      const r = await reconcile();
      assert.equal(r.phase, "Failed");
      assert.equal(cond(r, "Degraded").reason, "MixedNodeRoles");
      assert.match(cond(r, "Degraded").message, /control-plane nodes \(m1\)/);
      assert.equal(await client.getOrNull("MachineConfigPool", "sandboxed"), null);
      assert.equal(await client.getOrNull("MachineConfig", "50-sandbox-operator-sandboxed"), null);
    } finally {
      await client.mergePatch("Node", "m1", { metadata: { labels: { sandbox: null } } });
    }
  });

  it("compact cluster: targets the master pool, says so, and uninstalls from it", async () => {
    const r1 = await reconcile({ selector: "compact=yes" });
    assert.equal(r1.platform.machineConfigPool, "master");
    assert.match(r1.platform.message!, /compact cluster.*master pool/);
    assert.equal(await client.getOrNull("MachineConfigPool", "sandboxed"), null, "no custom pool");
    const mc = await client.get<MachineConfig & KubeObject>("MachineConfig", "50-sandbox-operator-master");
    assert.equal(mc.metadata.labels!["machineconfiguration.openshift.io/role"], "master");
    for (const n of ["m1", "m2", "m3"]) assert.equal((await labels(n))[RL], undefined);
    await mco.settle();
    const r2 = await reconcile({ selector: "compact=yes" });
    assert.equal(r2.done, true, JSON.stringify(r2.nodes));
    for (const n of ["m1", "m2", "m3"]) assert.equal((await runtimeLabels(n)).length, 2);
    for (const n of ["w1", "w4"]) assert.deepEqual(await runtimeLabels(n), []);

    const u1 = await reconcile({ selector: "compact=yes", uninstall: true });
    assert.equal(u1.phase, "Uninstalling");
    assert.equal(await client.getOrNull("MachineConfig", "50-sandbox-operator-master"), null);
    await mco.settle();
    const u2 = await reconcile({ selector: "compact=yes", uninstall: true });
    assert.equal(u2.phase, "Uninstalled", JSON.stringify(u2.conditions));
    for (const n of ["m1", "m2", "m3"]) assert.deepEqual(await runtimeLabels(n), []);
    assert.ok(await client.getOrNull("MachineConfigPool", "master"), "the master pool is never deleted");
  });
});
