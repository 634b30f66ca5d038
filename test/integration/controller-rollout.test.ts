// The controller on a real apiserver with simulated agents: selection, rollout to Ready,
// labels and RuntimeClasses, a failing node, selector changes, impossible and invalid configs.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/kube/client.js";
import type { Registry } from "prom-client";
import { newRegistry, startHttpServer } from "../../src/telemetry/index.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { specDesiredFor } from "../../src/render/desired-node.js";
import { AGENT_LABEL, cond, configObject, ourNodeLabels, createNodes, eventually, FINALIZER, getConfig, resetCluster, runtimeLabels, setupEnv, startAgent, startController, waitReady, type Env, type SNode } from "./controller-helpers.js";

type RC = KubeObject & { handler: string; overhead: { podFixed: Record<string, string> }; scheduling: { nodeSelector: Record<string, string> } };

describe("controller rollout on a real apiserver", () => {
  let env: Env;
  let ctl: Awaited<ReturnType<typeof startController>>;
  let agent: SimulatedAgent | undefined;
  const failing = new Map<string, string>();
  let registry: Registry;

  before(async () => {
    env = await setupEnv();
    registry = newRegistry();
    ctl = await startController(env, registry);
  });
  afterEach(async () => {
    try {
      await resetCluster(env.client);
    } finally {
      await agent?.stop();
      agent = undefined;
    }
    failing.clear();
  });
  after(async () => {
    await ctl?.stop();
    await env?.stop();
  });

  it("5 nodes, selector picks 3: SandboxNodes, verified labels, RuntimeClasses, Ready 3/3", async () => {
    const { client } = env;
    await createNodes(client, ["n1", "n2", "n3"], { pool: "sandbox" });
    await createNodes(client, ["n4", "n5"], { pool: "other" });
    agent = await startAgent(env, { usable: (n) => (n === "n1" ? ["kata-qemu", "gvisor"] : ["gvisor"]), delayMs: 50 });
    await client.create(configObject({ nodeSelector: { matchLabels: { pool: "sandbox" } }, runtimes: { allowed: ["kata-qemu", "gvisor"] }, rollout: { maxUnavailable: 2 } }));
    const ready = await waitReady(client, 3);
    assert.deepEqual(ready.status?.counts, { selected: 3, ready: 3, progressing: 0, degraded: 0, uninstalling: 0 });
    assert.deepEqual(ready.metadata.finalizers, [FINALIZER]);
    assert.deepEqual(ready.status?.platform, { kind: "Kubernetes", installMethod: "DaemonSet" });
    assert.deepEqual(ready.status?.nodes?.map((n) => [n.name, n.state, n.backend]), [["n1", "Ready", "kata-qemu"], ["n2", "Ready", "gvisor"], ["n3", "Ready", "gvisor"]]);
    for (const c of ready.status?.conditions ?? []) assert.equal(c.observedGeneration, ready.metadata.generation);
    assert.equal(cond(ready, "Progressing")?.status, "False");
    assert.equal(cond(ready, "Degraded")?.status, "False");

    const sns = (await client.list<SNode>("SandboxNode")).items;
    assert.deepEqual(sns.map((s) => s.metadata.name).sort(), ["n1", "n2", "n3"]);
    for (const sn of sns) {
      assert.equal(sn.metadata.labels?.["sandboxing.dev/config"], "cluster");
      assert.equal(sn.metadata.ownerReferences?.[0]?.kind, "Node");
      assert.equal(sn.status?.appliedHash, specDesiredFor(sn.spec, sn.status?.probe)?.hash);
    }
    const n1 = sns.find((s) => s.metadata.name === "n1")!;
    assert.deepEqual(specDesiredFor(n1.spec, n1.status?.probe)?.handlers.map((h) => [h.name, h.backend, h.general ?? false]), [["sandboxed", "kata-qemu", true], ["kata", "kata-qemu", false], ["gvisor", "gvisor", false]]);

    assert.deepEqual(await runtimeLabels(client, "n1"), { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.kata": "true", "sandboxing.dev/runtime.gvisor": "true" });
    assert.deepEqual(await runtimeLabels(client, "n2"), { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true" });
    assert.deepEqual(await ourNodeLabels(client, "n4"), {}, "an unselected node gets neither runtime nor agent label");
    assert.deepEqual(await ourNodeLabels(client, "n5"), {});
    for (const n of ["n1", "n2", "n3"]) assert.equal((await ourNodeLabels(client, n))["sandboxing.dev/agent"], "true", `${n} runs the agent DaemonSet`);
    assert.deepEqual([...agent.unscheduled], [], "every SandboxNode's Node carried the agent label when its agent looked");
    assert.equal(await client.getOrNull("SandboxNode", "n4"), null);

    const rcs = (await client.list<RC>("RuntimeClass")).items;
    assert.deepEqual(rcs.map((r) => r.metadata.name).sort(), ["gvisor", "kata", "sandboxed", "sandboxing-verify-gvisor", "sandboxing-verify-kata", "sandboxing-verify-sandboxed"]);
    // The agents' verification classes: the same handler without the label gate (ADR 0004).
    const verify = rcs.find((r) => r.metadata.name === "sandboxing-verify-sandboxed")!;
    assert.equal(verify.handler, "sandboxed");
    assert.equal((verify as { scheduling?: unknown }).scheduling, undefined);
    const general = rcs.find((r) => r.metadata.name === "sandboxed")!;
    assert.equal(general.handler, "sandboxed");
    assert.deepEqual(general.scheduling.nodeSelector, { "sandboxing.dev/runtime.sandboxed": "true" });
    assert.deepEqual(general.overhead.podFixed, { memory: "320Mi", cpu: "250m" });
    assert.deepEqual(ready.status?.runtimeClasses, ["gvisor", "kata", "sandboxed"]);
    assert.ok(agent.maxConcurrent <= 2, `at most maxUnavailable=2 nodes applied at once, saw ${agent.maxConcurrent}`);

    const events = await client.list<KubeObject & { reason: string; involvedObject: { name: string } }>("Event", { namespace: "default" });
    assert.ok(events.items.some((e) => e.reason === "NodeReady" && e.involvedObject.name === "cluster"), "an Event per node transition");
  });

  it("one agent fails: that node is Degraded with the agent's reason, the others Ready, classes select only verified nodes", async () => {
    const { client } = env;
    await createNodes(client, ["f1", "f2", "f3"]);
    failing.set("f2", "CRI RunPodSandbox: simulated runsc failure: exit status 128");
    agent = await startAgent(env, { fail: (n) => failing.get(n) });
    await client.create(configObject({ rollout: { maxUnavailable: 1 } }));
    const c = await eventually("2 ready, 1 degraded", async () => {
      const c = await getConfig(client);
      return c?.status?.counts?.ready === 2 && c.status.counts.degraded === 1 && cond(c, "Progressing")?.status === "False" ? c : null;
    });
    const f2 = c.status?.nodes?.find((n) => n.name === "f2");
    assert.equal(f2?.state, "Degraded");
    assert.equal(f2?.reason, "VerificationFailed");
    assert.match(f2?.message ?? "", /simulated runsc failure/);
    assert.equal(cond(c, "Degraded")?.status, "True");
    assert.equal(cond(c, "Degraded")?.reason, "NodesDegraded");
    assert.match(cond(c, "Degraded")?.message ?? "", /f2 \(VerificationFailed\)/);
    assert.equal(cond(c, "Ready")?.reason, "PartiallyReady");
    assert.deepEqual(await ourNodeLabels(client, "f2"), AGENT_LABEL, "a degraded node gets no runtime label; its agent keeps running");
    assert.equal((await runtimeLabels(client, "f1"))["sandboxing.dev/runtime.sandboxed"], "true");
    assert.equal((await runtimeLabels(client, "f3"))["sandboxing.dev/runtime.sandboxed"], "true");
  });

  it("selector change adds one node and removes one: the removed node is reverted, then its SandboxNode deleted", async () => {
    const { client } = env;
    await createNodes(client, ["s1", "s2"], { pool: "a" });
    await createNodes(client, ["s3"], { pool: "b" });
    agent = await startAgent(env, { delayMs: 30 });
    await client.create(configObject({ nodeSelector: { matchExpressions: [{ key: "pool", operator: "In", values: ["a"] }] } }));
    await waitReady(client, 2);
    const gen1 = (await getConfig(client))!.metadata.generation;
    // s2 leaves, s3 joins.
    await client.mergePatch("Node", "s2", { metadata: { labels: { pool: "c" } } });
    await client.mergePatch("Node", "s3", { metadata: { labels: { pool: "a" } } });
    await eventually("s2 reverted and gone, s3 ready", async () => {
      const c = await getConfig(client);
      const names = c?.status?.nodes?.map((n) => `${n.name}:${n.state}`).join(",");
      return names === "s1:Ready,s3:Ready" && (await client.getOrNull("SandboxNode", "s2")) === null ? c : null;
    });
    assert.ok(agent.log.some((e) => e.node === "s2" && e.action === "Revert"), "the agent on s2 was told to revert before the SandboxNode went away");
    assert.deepEqual(await ourNodeLabels(client, "s2"), {}, "reverted and released: neither runtime nor agent label");
    assert.equal((await ourNodeLabels(client, "s3"))["sandboxing.dev/agent"], "true");
    assert.equal((await runtimeLabels(client, "s3"))["sandboxing.dev/runtime.sandboxed"], "true");
    const c = await waitReady(client, 2);
    assert.equal(c.metadata.generation, gen1, "the selection follows Node labels without a spec change");
  });

  it("a config change rolls out again within maxUnavailable and adds the variant's RuntimeClass", async () => {
    const { client } = env;
    await createNodes(client, ["v1", "v2", "v3", "v4"]);
    agent = await startAgent(env, { usable: () => ["kata-qemu", "gvisor"], delayMs: 40 });
    await client.create(configObject({ runtimes: { allowed: ["kata-qemu", "gvisor"] }, rollout: { maxUnavailable: "50%" } }));
    const first = await waitReady(client, 4);
    const v1 = await client.get<SNode>("SandboxNode", "v1");
    const hash1 = specDesiredFor(v1.spec, v1.status?.probe)?.hash;
    agent.resetMaxConcurrent();
    await client.mergePatch("SandboxConfig", "cluster", { spec: { variants: [{ name: "kata-big", backend: "kata-qemu", vcpus: 4, memory: "4Gi" }] } });
    await eventually("new generation rolled out", async () => {
      const c = await getConfig(client);
      return c && c.metadata.generation! > first.metadata.generation! && c.status?.observedGeneration === c.metadata.generation && cond(c, "Ready")?.status === "True" && c.status?.counts?.ready === 4 ? c : null;
    });
    const sn = await client.get<SNode>("SandboxNode", "v1");
    assert.notEqual(specDesiredFor(sn.spec, sn.status?.probe)?.hash, hash1);
    assert.deepEqual(specDesiredFor(sn.spec, sn.status?.probe)?.handlers.find((h) => h.name === "kata-big"), { name: "kata-big", backend: "kata-qemu", kata: { vcpus: 4, memoryMiB: 4096 } });
    assert.ok(agent.maxConcurrent <= 2, `50% of 4 nodes = 2 at once, saw ${agent.maxConcurrent}`);
    assert.equal((await runtimeLabels(client, "v3"))["sandboxing.dev/runtime.kata-big"], "true");
    const rc = await client.get<RC>("RuntimeClass", "kata-big");
    assert.deepEqual(rc.scheduling.nodeSelector, { "sandboxing.dev/runtime.kata-big": "true" });
  });

  it("a valid but impossible config (no node can run an allowed backend) says so", async () => {
    const { client } = env;
    await createNodes(client, ["i1", "i2"]);
    agent = await startAgent(env, { usable: () => ["gvisor"] });
    await client.create(configObject({ runtimes: { allowed: ["kata-qemu", "kata-fc"] } }));
    const c = await eventually("Degraded NoUsableBackend", async () => {
      const c = await getConfig(client);
      return cond(c, "Degraded")?.reason === "NoUsableBackend" ? c : null;
    });
    assert.equal(cond(c, "Ready")?.status, "False");
    assert.equal(cond(c, "Ready")?.reason, "NoUsableBackend");
    assert.match(cond(c, "Degraded")?.message ?? "", /i1: none of the allowed runtimes can run here: kata-qemu: installed, not usable/);
    assert.deepEqual(c.status?.nodes?.map((n) => n.state), ["Degraded", "Degraded"]);
    const sn = await client.get<SNode>("SandboxNode", "i1");
    assert.deepEqual(specDesiredFor(sn.spec, sn.status?.probe)?.handlers, []);
    assert.equal(sn.spec.proceed, false);
  });

  it("installMethod MachineConfig on plain Kubernetes: Degraded MachineConfigUnavailable, nothing installed; DaemonSet once fixed", async () => {
    const { client } = env;
    await createNodes(client, ["p1", "p2"]);
    agent = await startAgent(env);
    await client.create(configObject({ installMethod: "MachineConfig" }));
    const c = await eventually("Degraded MachineConfigUnavailable", async () => {
      const c = await getConfig(client);
      return cond(c, "Degraded")?.reason === "MachineConfigUnavailable" && c!.status?.observedGeneration === c!.metadata.generation ? c : null;
    });
    assert.equal(cond(c, "Degraded")?.status, "True");
    assert.equal(cond(c, "Ready")?.reason, "MachineConfigUnavailable");
    assert.match(cond(c, "Degraded")!.message, /spec\.installMethod is MachineConfig.*not OpenShift.*set spec\.installMethod to DaemonSet or Auto/);
    for (const x of c.status?.conditions ?? []) assert.equal(x.observedGeneration, c.metadata.generation);
    assert.equal(c.status?.platform?.kind, "Kubernetes");
    assert.deepEqual(c.status?.counts, { selected: 0, ready: 0, progressing: 0, degraded: 0, uninstalling: 0 });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual((await client.list("SandboxNode")).items, [], "no SandboxNode");
    assert.deepEqual((await client.list("RuntimeClass")).items, [], "no RuntimeClass");
    for (const n of ["p1", "p2"]) assert.deepEqual(await ourNodeLabels(client, n), {}, `no label on ${n}`);

    await client.mergePatch("SandboxConfig", "cluster", { spec: { installMethod: "Auto" } });
    const ready = await waitReady(client, 2);
    assert.deepEqual(ready.status?.platform, { kind: "Kubernetes", installMethod: "DaemonSet" });
    assert.equal(cond(ready, "Degraded")?.status, "False");
  });

  it("an invalid update is refused by the apiserver and never reaches the controller", async () => {
    const { client } = env;
    await createNodes(client, ["x1"]);
    agent = await startAgent(env);
    await client.create(configObject({}));
    const before = await waitReady(client, 1);
    // Let the controller finish what Ready set off (Events, a last status write) before counting.
    let reconcilesBefore = -1;
    await eventually("controller idle", async () => {
      const n = ctl.client.totalRequests;
      await new Promise((r) => setTimeout(r, 400));
      reconcilesBefore = n;
      return ctl.client.totalRequests === n;
    });
    await assert.rejects(client.mergePatch("SandboxConfig", "cluster", { spec: { rollout: { maxUnavailable: "0%" } } }), /spec\.rollout\.maxUnavailable/);
    await assert.rejects(client.mergePatch("SandboxConfig", "cluster", { spec: { runtimes: { allowed: ["gvisor"], preferred: ["kata-qemu"] } } }), /runtimes\.preferred/);
    await new Promise((r) => setTimeout(r, 500));
    const after = await getConfig(client);
    assert.equal(after?.metadata.resourceVersion, before.metadata.resourceVersion, "nothing was stored, so no watch event reached the controller");
    assert.equal(ctl.client.totalRequests, reconcilesBefore, "the controller made no request: it saw no change");
  });

  it("never overwrites a RuntimeClass another owner has: RuntimeClassConflict", async () => {
    const { client } = env;
    await client.create({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: "gvisor" }, handler: "runsc" } as never);
    try {
      await createNodes(client, ["c1"]);
      agent = await startAgent(env);
      await client.create(configObject({}));
      // The status may first report the conflict before our own classes are published: wait for both.
      const c = await eventually("RuntimeClassConflict with our other classes published", async () => {
        const c = await getConfig(client);
        return cond(c, "Degraded")?.reason === "RuntimeClassConflict" && c?.status?.runtimeClasses?.includes("sandboxed") ? c : null;
      });
      assert.match(cond(c, "Degraded")?.message ?? "", /RuntimeClass gvisor exists and is not managed by sandbox-operator/);
      const rc = await client.get<RC>("RuntimeClass", "gvisor");
      assert.equal(rc.handler, "runsc", "the foreign RuntimeClass is untouched");
      assert.ok(c.status?.runtimeClasses?.includes("sandboxed") && !c.status.runtimeClasses.includes("gvisor"), `status.runtimeClasses ${JSON.stringify(c.status?.runtimeClasses)}: ours, never the foreign gvisor`);
    } finally {
      await resetCluster(client);
      assert.ok(await client.getOrNull("RuntimeClass", "gvisor"), "uninstall leaves the foreign RuntimeClass alone");
      await client.delete("RuntimeClass", "gvisor");
    }
  });

  it("serves /metrics (reconcile duration and errors, nodes by state, queue depth) and /readyz", async () => {
    const { client } = env;
    await createNodes(client, ["m1", "m2"]);
    agent = await startAgent(env);
    await client.create(configObject({}));
    await waitReady(client, 2);
    const server = await startHttpServer({ port: 0, host: "127.0.0.1", registry, ready: () => ctl.controller.ready });
    try {
      const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      assert.match(metrics, /sandbox_operator_reconcile_duration_seconds_count\{controller="installer"\} [1-9]/);
      assert.match(metrics, /sandbox_operator_reconcile_duration_seconds_count\{controller="config"\} [1-9]/);
      assert.match(metrics, /sandbox_operator_nodes\{state="Ready"\} 2/);
      assert.match(metrics, /sandbox_operator_workqueue_depth\{controller="runtimeclasses"\} 0/);
      assert.match(metrics, /# TYPE sandbox_operator_reconcile_errors_total counter/);
      assert.match(metrics, /sandbox_operator_api_requests\{verb="PATCH"\} [1-9]/);
      assert.match(metrics, /sandbox_operator_process_resident_memory_bytes/);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 200);
    } finally {
      await server.close();
    }
  });
});
