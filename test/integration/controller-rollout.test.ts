// The controller on a real apiserver with simulated agents: selection, rollout to Ready,
// labels and RuntimeClasses, a failing node, selector changes, impossible and invalid configs.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/kube/client.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { cond, configObject, createNodes, FINALIZER, resetCluster, runtimeLabels, setupEnv, startAgent, startController, waitReady, type Env, type SNode } from "./controller-helpers.js";

type RC = KubeObject & { handler: string; overhead: { podFixed: Record<string, string> }; scheduling: { nodeSelector: Record<string, string> } };

describe("controller rollout on a real apiserver", () => {
  let env: Env;
  let ctl: Awaited<ReturnType<typeof startController>>;
  let agent: SimulatedAgent | undefined;
  const failing = new Map<string, string>();

  before(async () => {
    env = await setupEnv();
    ctl = await startController(env);
  });
  afterEach(async () => {
    await resetCluster(env.client);
    await agent?.stop();
    agent = undefined;
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
      assert.equal(sn.status?.appliedHash, sn.spec.desired?.hash);
    }
    const n1 = sns.find((s) => s.metadata.name === "n1")!;
    assert.deepEqual(n1.spec.desired?.handlers.map((h) => [h.name, h.backend, h.general ?? false]), [["sandboxed", "kata-qemu", true], ["kata", "kata-qemu", false], ["gvisor", "gvisor", false]]);

    assert.deepEqual(await runtimeLabels(client, "n1"), { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.kata": "true", "sandboxing.dev/runtime.gvisor": "true" });
    assert.deepEqual(await runtimeLabels(client, "n2"), { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true" });
    assert.deepEqual(await runtimeLabels(client, "n4"), {});
    assert.equal(await client.getOrNull("SandboxNode", "n4"), null);

    const rcs = (await client.list<RC>("RuntimeClass")).items;
    assert.deepEqual(rcs.map((r) => r.metadata.name).sort(), ["gvisor", "kata", "sandboxed"]);
    const general = rcs.find((r) => r.metadata.name === "sandboxed")!;
    assert.equal(general.handler, "sandboxed");
    assert.deepEqual(general.scheduling.nodeSelector, { "sandboxing.dev/runtime.sandboxed": "true" });
    assert.deepEqual(general.overhead.podFixed, { memory: "320Mi", cpu: "250m" });
    assert.deepEqual(ready.status?.runtimeClasses, ["gvisor", "kata", "sandboxed"]);
    assert.ok(agent.maxConcurrent <= 2, `at most maxUnavailable=2 nodes applied at once, saw ${agent.maxConcurrent}`);

    const events = await client.list<KubeObject & { reason: string; involvedObject: { name: string } }>("Event", { namespace: "default" });
    assert.ok(events.items.some((e) => e.reason === "NodeReady" && e.involvedObject.name === "cluster"), "an Event per node transition");
  });
});
