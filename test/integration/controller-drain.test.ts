// spec.rollout.drain on a real apiserver: a node is cordoned and its pods evicted through the
// Eviction subresource before its agent may proceed (DaemonSet and mirror pods stay); a
// PodDisruptionBudget that refuses beyond drainTimeoutSeconds stops the rollout there with a status
// naming node, pod and budget (the node stays cordoned); verified nodes are uncordoned, an admin's cordon is kept.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AnyObject, KubeObject } from "../../src/kube/client.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { cond, configObject, createNodes, deletePodNow, eventually, getConfig, resetCluster, setupEnv, startAgent, startController, waitReady, type Env } from "./controller-helpers.js";

type Pod = KubeObject & { spec: { nodeName?: string } };
type NodeObj = KubeObject & { spec?: { unschedulable?: boolean } };

const pod = (name: string, nodeName: string, extra: Partial<KubeObject["metadata"]> = {}): AnyObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "default", labels: { app: name.replace(/-\d+$/, "") }, ...extra },
  spec: { nodeName, containers: [{ name: "app", image: "registry.invalid/app:1" }] },
});

describe("controller drain (spec.rollout.drain) on a real apiserver", () => {
  let env: Env;
  let ctl: Awaited<ReturnType<typeof startController>>;
  let agent: SimulatedAgent | undefined;

  before(async () => {
    env = await setupEnv();
    ctl = await startController(env);
  });
  afterEach(async () => {
    try {
      for (const p of (await env.client.list<KubeObject>("PodDisruptionBudget", { namespace: "default" })).items) await env.client.delete("PodDisruptionBudget", p.metadata.name, "default");
      await resetCluster(env.client);
    } finally {
      await agent?.stop();
      agent = undefined;
    }
  });
  after(async () => {
    await ctl?.stop();
    await env?.stop();
  });

  it("cordons, evicts (a PDB refusing stops the rollout at that node), proceeds once empty, uncordons after verify", async () => {
    const { client } = env;
    await createNodes(client, ["d1", "d2"]);
    await client.mergePatch("Node", "d2", { spec: { unschedulable: true } }); // the admin's own cordon
    await client.create(pod("web-1", "d1"));
    // As the kubelet reports it: a Pending pod is evicted without asking its budget.
    await client.mergePatch("Pod", "web-1", { status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } }, { namespace: "default", subresource: "status" });
    await client.create(pod("ds-1", "d1", { ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: "ds", uid: "00000000-0000-0000-0000-000000000001" }] }));
    await client.create(pod("static-1", "d1", { annotations: { "kubernetes.io/config.mirror": "static" } }));
    // No disruption controller runs here: the budget's status is written as it would write it (0 disruptions allowed).
    await client.create({ apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: "web-pdb", namespace: "default" }, spec: { minAvailable: 1, selector: { matchLabels: { app: "web" } } } } as AnyObject);
    const pdbStatus = async (allowed: number) => {
      const pdb = await client.get<KubeObject>("PodDisruptionBudget", "web-pdb", "default");
      await client.mergePatch("PodDisruptionBudget", "web-pdb", { status: { observedGeneration: pdb.metadata.generation, disruptionsAllowed: allowed, currentHealthy: 1, desiredHealthy: 1 - allowed, expectedPods: 1 } }, { namespace: "default", subresource: "status" });
    };
    await pdbStatus(0);
    agent = await startAgent(env);
    await client.create(configObject({ rollout: { maxUnavailable: 1, drain: true, drainTimeoutSeconds: 2 } }));

    const blocked = await eventually("d1 DrainBlocked", async () => {
      const c = await getConfig(client);
      return c?.status?.nodes?.find((n) => n.name === "d1")?.reason === "DrainBlocked" ? c : null;
    }, 20_000);
    const d1 = blocked.status!.nodes!.find((n) => n.name === "d1")!;
    assert.equal(d1.state, "Degraded");
    assert.match(d1.message!, /eviction of pod default\/web-1 refused: .*disruption budget.*web-pdb/);
    assert.match(d1.message!, /the node stays cordoned/);
    assert.match(cond(blocked, "Degraded")!.message, /d1 \(DrainBlocked\)/);
    assert.equal((await client.get<NodeObj>("Node", "d1")).spec?.unschedulable, true, "cordoned");
    assert.equal(blocked.status!.nodes!.find((n) => n.name === "d2")?.reason, "WaitingForRollout", "the rollout stops at d1 (maxUnavailable 1)");
    assert.ok(!agent.log.some((e) => e.action === "Apply"), "no agent proceeded while the drain is blocked");
    for (const p of ["web-1", "ds-1", "static-1"]) assert.equal((await client.get<Pod>("Pod", p, "default")).metadata.deletionTimestamp, undefined, `${p} still runs`);

    await pdbStatus(1); // e.g. the app scaled up: the budget allows one eviction now
    await eventually("web-1 evicted", async () => !!(await client.getOrNull<Pod>("Pod", "web-1", "default"))?.metadata.deletionTimestamp || !(await client.getOrNull("Pod", "web-1", "default")), 20_000);
    assert.equal((await client.get<NodeObj>("Node", "d1")).spec?.unschedulable, true, "still cordoned while the evicted pod terminates");
    assert.ok(!agent.log.some((e) => e.action === "Apply"), "the agent waits for the pod to be gone");
    await deletePodNow(client, "web-1"); // what the kubelet does once the container stopped

    await waitReady(client, 2, 30_000);
    const d1Node = await client.get<NodeObj>("Node", "d1");
    assert.equal(d1Node.spec?.unschedulable, undefined, "our cordon is lifted once verified");
    assert.deepEqual(Object.keys(d1Node.metadata.labels ?? {}).filter((k) => /sandboxing.dev\/(drain|cordoned)/.test(k)), []);
    assert.equal((await client.get<NodeObj>("Node", "d2")).spec?.unschedulable, true, "the admin's cordon stays");
    for (const p of ["ds-1", "static-1"]) assert.equal((await client.get<Pod>("Pod", p, "default")).metadata.deletionTimestamp, undefined, `${p} (DaemonSet / mirror pod) is never evicted`);
    assert.deepEqual(agent.log.filter((e) => e.action === "Apply").map((e) => e.node), ["d1", "d2"], "one node at a time, each after its drain");
  });
});
