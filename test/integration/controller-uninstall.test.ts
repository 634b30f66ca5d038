// Uninstall on a real apiserver: the finalizer holds the SandboxConfig while pods use our
// RuntimeClasses (the condition names them), nodes revert within maxUnavailable, RuntimeClasses
// go last, and deleting + re-creating the config in the middle converges; a node whose agent is
// gone or whose revert failed holds it only for spec.uninstall.nodeTimeoutSeconds, then waits to be abandoned.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/kube/client.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { specDesiredFor } from "../../src/render/desired-node.js";
import { sandboxctl } from "../harness/sandboxctl.js";
import { AGENT_LABEL, cond, configObject, ourNodeLabels, createNodes, deletePodNow, eventually, FINALIZER, getConfig, resetCluster, runtimeLabels, sandboxedPod, setupEnv, startAgent, startController, waitReady, type Env, type SNode } from "./controller-helpers.js";

async function nothingLeft(env: Env, nodes: string[]): Promise<void> {
  const { client } = env;
  assert.equal(await getConfig(client), null, "SandboxConfig gone (finalizer released)");
  assert.deepEqual((await client.list("SandboxNode")).items.map((s) => s.metadata.name), [], "no SandboxNode left");
  assert.deepEqual((await client.list<KubeObject>("RuntimeClass")).items.map((r) => r.metadata.name), [], "no RuntimeClass left");
  for (const n of nodes) assert.deepEqual(await ourNodeLabels(client, n), {}, `no label of ours (runtime or agent) left on ${n}`);
}

describe("controller uninstall on a real apiserver", () => {
  let env: Env;
  let ctl: Awaited<ReturnType<typeof startController>>;
  let agent: SimulatedAgent | undefined;

  before(async () => {
    env = await setupEnv();
    ctl = await startController(env);
  });
  afterEach(async () => {
    try {
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

  it("waits for a pod using runtimeClassName sandboxed, names it, then removes everything once it is gone", async () => {
    const { client } = env;
    const nodes = ["u1", "u2", "u3"];
    await createNodes(client, nodes);
    agent = await startAgent(env, { delayMs: 30 });
    await client.create(configObject({ rollout: { maxUnavailable: 1 } }));
    await waitReady(client, 3);
    await client.create(sandboxedPod("blocker", "u2"));
    await client.delete("SandboxConfig", "cluster");

    const blocked = await eventually("uninstall blocked by default/blocker", async () => {
      const c = await getConfig(client);
      const p = cond(c, "Progressing");
      return p?.reason === "UninstallBlockedByPods" && c?.status?.nodes?.length === 1 && (await client.list("SandboxNode")).items.length === 1 ? c : null;
    });
    assert.match(cond(blocked, "Progressing")!.message, /default\/blocker/);
    assert.equal(cond(blocked, "Ready")?.reason, "Uninstalling");
    assert.deepEqual(blocked.metadata.finalizers, [FINALIZER]);
    assert.deepEqual(blocked.status?.nodes?.map((n) => [n.name, n.reason]), [["u2", "PodsRunning"]]);
    assert.deepEqual(await ourNodeLabels(client, "u2"), AGENT_LABEL, "runtime labels go first, so nothing new lands on the node; the agent stays to revert");
    // u1 and u3 are reverted: their agent label goes right after their SandboxNode.
    await eventually("u1, u3 released", async () => Object.keys({ ...(await ourNodeLabels(client, "u1")), ...(await ourNodeLabels(client, "u3")) }).length === 0, 10_000);
    const u2 = await client.get<SNode>("SandboxNode", "u2");
    assert.equal(u2.spec.action, "Apply", "not told to revert while the pod runs");
    assert.ok(await client.getOrNull("RuntimeClass", "sandboxed"), "RuntimeClasses stay until every node is reverted");
    assert.ok(!agent.log.some((e) => e.node === "u2" && e.action === "Revert"));

    await deletePodNow(client, "blocker");
    await eventually("SandboxConfig gone", async () => (await getConfig(client)) === null, 20_000);
    await nothingLeft(env, nodes);
    assert.ok(agent.log.some((e) => e.node === "u2" && e.action === "Revert"), "u2 reverted by its agent");
    assert.ok(agent.maxConcurrent <= 1, `maxUnavailable 1, saw ${agent.maxConcurrent}`);
  });

  it("whenPodsRun: Proceed reverts even while sandboxed pods exist", async () => {
    const { client } = env;
    await createNodes(client, ["p1"]);
    agent = await startAgent(env);
    await client.create(configObject({ uninstall: { whenPodsRun: "Proceed" } }));
    await waitReady(client, 1);
    await client.create(sandboxedPod("stays", "p1", "gvisor"));
    await client.delete("SandboxConfig", "cluster");
    await eventually("SandboxConfig gone", async () => (await getConfig(client)) === null, 20_000);
    await nothingLeft(env, ["p1"]);
  });

  it("deleting and re-creating the config mid-uninstall converges to the new config", async () => {
    const { client } = env;
    const nodes = ["r1", "r2", "r3"];
    await createNodes(client, nodes);
    agent = await startAgent(env, { delayMs: 300 });
    await client.create(configObject({ rollout: { maxUnavailable: 1 } }));
    await waitReady(client, 3, 30_000);
    await client.delete("SandboxConfig", "cluster");
    await eventually("one node reverted", async () => agent!.log.some((e) => e.action === "Revert"));
    // The name is taken until the finalizer is released: keep trying, as an admin or GitOps tool would.
    await eventually("new SandboxConfig accepted", async () => client.create(configObject({ rollout: { maxUnavailable: 1 } })).then(() => true, () => false), 30_000, 100);
    const c = await waitReady(client, 3, 30_000);
    assert.deepEqual(c.status?.runtimeClasses, ["gvisor", "sandboxed"]);
    for (const n of nodes) assert.equal((await runtimeLabels(client, n))["sandboxing.dev/runtime.sandboxed"], "true");
    assert.ok(await client.getOrNull("RuntimeClass", "sandboxed"), "the old uninstall did not remove the new config's classes");
  });

  it("a finalizer removed by hand mid-uninstall and a new config at once: orphaned SandboxNodes are adopted", async () => {
    const { client } = env;
    const nodes = ["o1", "o2", "o3"];
    await createNodes(client, nodes);
    agent = await startAgent(env, { delayMs: 300 });
    await client.create(configObject({ rollout: { maxUnavailable: 1 } }));
    await waitReady(client, 3, 30_000);
    await client.delete("SandboxConfig", "cluster");
    await eventually("a node reverting", async () => (await client.list<SNode>("SandboxNode")).items.some((s) => s.spec.action === "Revert"));
    await client.mergePatch("SandboxConfig", "cluster", { metadata: { finalizers: null } });
    await eventually("old config gone", async () => (await getConfig(client)) === null);
    await client.create(configObject({ rollout: { maxUnavailable: 1 } }));
    const c = await waitReady(client, 3, 30_000);
    assert.deepEqual(c.metadata.finalizers, [FINALIZER]);
    // A revert the agent was still carrying out when the new config arrived may land after this
    // Ready (status written from the SandboxNode as it was); the node is then applied again.
    await eventually("every node applied under the new config and labelled", async () => {
      for (const n of nodes) {
        const sn = await client.get<SNode>("SandboxNode", n);
        if (sn.spec.action !== "Apply" || sn.status?.appliedHash !== specDesiredFor(sn.spec, sn.status?.probe)?.hash) return false;
        if ((await runtimeLabels(client, n))["sandboxing.dev/runtime.sandboxed"] !== "true") return false;
      }
      return true;
    }, 30_000);
    await waitReady(client, 3, 30_000);
  });

  // Last in the file: sandboxctl uninstall removes the operator's namespace, which no namespace controller finishes here.
  it("an agent that is gone and a revert that fails hold the uninstall only for nodeTimeoutSeconds; sandboxctl uninstall --abandon-node lets go of them", async () => {
    const { client } = env;
    const nodes = ["g1", "g2", "g3"];
    await createNodes(client, nodes);
    const gone = new Set<string>();
    agent = await startAgent(env, { silent: (n) => gone.has(n), failRevert: (n) => (n === "g2" ? "restoring /etc/containerd/config.toml: input/output error" : undefined) });
    await client.create(configObject({ rollout: { maxUnavailable: 1 }, uninstall: { nodeTimeoutSeconds: 2 } }));
    await waitReady(client, 3);
    gone.add("g1"); // its agent pod is gone: nothing answers the revert request
    const started = Date.now();
    await client.delete("SandboxConfig", "cluster");

    const stuck = await eventually("g1 and g2 stuck, g3 reverted", async () => {
      const c = await getConfig(client);
      const reasons = Object.fromEntries((c?.status?.nodes ?? []).map((n) => [n.name, n.reason]));
      if (process.env.DEBUG_TEST) console.log("DBG", Date.now() - started, cond(c, "Progressing")?.reason, JSON.stringify(reasons), JSON.stringify(await client.getOrNull("SandboxNode", "g3")));
      return cond(c, "Progressing")?.reason === "UninstallStuck" && reasons.g1 === "AgentNotResponding" && reasons.g2 === "RevertFailed" && !reasons.g3 && !(await client.getOrNull("SandboxNode", "g3")) ? c : null;
    }, 20_000);
    assert.ok(Date.now() - started >= 2000, "nobody is declared stuck before the timeout");
    const progressing = cond(stuck, "Progressing")!.message;
    assert.match(progressing, /g1 \(AgentNotResponding: the agent has not answered the revert request for 2s/);
    assert.match(progressing, /g2 \(RevertFailed: the agent could not revert the node: RevertFailed: restoring \/etc\/containerd\/config\.toml: input\/output error/);
    assert.match(progressing, /sandboxctl uninstall --abandon-node g1/);
    assert.deepEqual(stuck.metadata.finalizers, [FINALIZER], "the stuck nodes still hold the finalizer: nothing is let go without an admin");
    assert.ok(agent.log.some((e) => e.node === "g3" && e.action === "Revert"), "g3 got the slot the stuck nodes freed (maxUnavailable 1)");
    assert.deepEqual(await ourNodeLabels(client, "g3"), {});
    assert.deepEqual(await ourNodeLabels(client, "g1"), AGENT_LABEL, "a stuck node keeps the agent label: a returning agent can still revert");

    const kube = { KUBECONFIG: env.cp.kubeconfigPath };
    const waited = await sandboxctl(["uninstall", "--keep-crds", "--timeout", "5m"], kube);
    assert.equal(waited.code, 5, waited.stderr);
    assert.match(waited.stderr, /uninstall is stuck: .*2 node\(s\)/);
    assert.match(waited.stderr, /g1 AgentNotResponding: /);
    assert.match(waited.stderr, /sandboxctl uninstall --abandon-node g1 --abandon-node g2/);
    const typo = await sandboxctl(["uninstall", "--keep-crds", "--abandon-node", "g9"], kube);
    assert.equal(typo.code, 2, typo.stderr);
    assert.match(typo.stderr, /--abandon-node g9: there is no SandboxNode g9; the SandboxNodes are: g1, g2/);

    const done = await sandboxctl(["uninstall", "--keep-crds", "--timeout", "30s", "--abandon-node", "g1", "--abandon-node", "g2"], kube);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /abandoned node g1: .*its sandbox runtime configuration stays on the node/);
    await nothingLeft(env, nodes);
    assert.ok(!agent.log.some((e) => e.node === "g1" && e.action === "Revert"), "g1 was let go, not reverted");
  });
});
