// The controller as a real process (tsx, like in its Pod): SIGKILL at several points of a
// rollout and of an uninstall, restart, converge, never more than maxUnavailable nodes at once;
// two replicas with leader election: one acts, the other takes over after the leader dies.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import type { KubeObject } from "../../src/kube/client.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { ourNodeLabels, configObject, createNodes, eventually, getConfig, killHard, logOf, NS, resetCluster, runtimeLabels, setupEnv, spawnController, startAgent, waitReady, type Env } from "./controller-helpers.js";

type Lease = KubeObject & { spec?: { holderIdentity?: string } };

/** Log lines where the controller wrote to the cluster (installer decisions). */
const writes = (log: string) => log.split("\n").filter((l) => /"component":"installer-daemonset"/.test(l)).length;

describe("controller process: crash safety and leader election", () => {
  let env: Env;
  let agent: SimulatedAgent | undefined;
  const children: ChildProcess[] = [];

  before(async () => {
    env = await setupEnv();
  });
  afterEach(async () => {
    try {
      // A controller must run for the uninstall to finish.
      const c = spawnController(env, "cleanup", ["--leader-elect", "false"]);
      children.push(c);
      await resetCluster(env.client, 60_000);
    } finally {
      for (const c of children.splice(0)) await killHard(c);
      await agent?.stop();
      agent = undefined;
    }
  });
  after(async () => {
    for (const c of children) await killHard(c);
    await env?.stop();
  });

  it("SIGKILL at several points of a rollout and an uninstall: converges, never beyond maxUnavailable", async () => {
    const { client } = env;
    const nodes = ["k1", "k2", "k3", "k4", "k5", "k6"];
    await createNodes(client, nodes);
    agent = await startAgent(env, { delayMs: 400 });
    await client.create(configObject({ rollout: { maxUnavailable: 2 } }));
    const applied = () => agent!.log.filter((e) => e.action === "Apply").length;
    const killPoints: Array<[string, () => Promise<boolean>]> = [
      ["first SandboxNodes exist", async () => (await client.list("SandboxNode")).items.length > 0],
      ["two nodes applied", async () => applied() >= 2],
      ["four nodes applied", async () => applied() >= 4],
    ];
    for (const [what, reached] of killPoints) {
      const c = spawnController(env, `kill-${children.length}`, ["--leader-elect", "false"]);
      children.push(c);
      await eventually(what, reached, 60_000, 20);
      await killHard(c);
    }
    children.push(spawnController(env, "final", ["--leader-elect", "false"]));
    await waitReady(client, 6, 60_000);
    for (const n of nodes) assert.equal((await runtimeLabels(client, n))["sandboxing.dev/runtime.sandboxed"], "true");
    assert.ok(agent.maxConcurrent <= 2, `at most maxUnavailable=2 nodes changing at once across restarts, saw ${agent.maxConcurrent}`);
    assert.equal(new Set(agent.log.filter((e) => e.action === "Apply").map((e) => e.node)).size, 6);

    // Now an uninstall, killed once in the middle.
    await killHard(children.pop()!);
    await client.delete("SandboxConfig", "cluster");
    const c = spawnController(env, "uninstall-1", ["--leader-elect", "false"]);
    children.push(c);
    await eventually("two nodes reverted", async () => agent!.log.filter((e) => e.action === "Revert").length >= 2, 60_000, 20);
    await killHard(c);
    children.push(spawnController(env, "uninstall-2", ["--leader-elect", "false"]));
    await eventually("SandboxConfig gone", async () => (await getConfig(client)) === null, 60_000);
    assert.deepEqual((await client.list("SandboxNode")).items, []);
    assert.deepEqual((await client.list("RuntimeClass")).items, []);
    for (const n of nodes) assert.deepEqual(await ourNodeLabels(client, n), {}, `nothing of ours left on ${n} (runtime and agent labels)`);
    assert.ok(agent.maxConcurrent <= 2, `uninstall also stays within maxUnavailable, saw ${agent.maxConcurrent}`);
  });

  it("two replicas: exactly one reconciles; kill it and the other takes over within 15 s", async () => {
    const { client } = env;
    await createNodes(client, ["l1", "l2"]);
    agent = await startAgent(env);
    const a = spawnController(env, "replica-a");
    const b = spawnController(env, "replica-b");
    children.push(a, b);
    const lease = () => client.getOrNull<Lease>("Lease", "sandbox-operator-controller", NS);
    const first = await eventually("a leader", async () => (await lease())?.spec?.holderIdentity, 30_000);
    await client.create(configObject({}));
    await waitReady(client, 2, 30_000);
    const [leader, standby] = first === "replica-a" ? [a, b] : [b, a];
    assert.ok(writes(logOf(leader)) > 0, "the leader reconciled");
    assert.equal(writes(logOf(standby)), 0, "the standby wrote nothing");

    await killHard(leader);
    const killedAt = Date.now();
    const second = await eventually("takeover", async () => {
      const h = (await lease())?.spec?.holderIdentity;
      return h && h !== first ? h : null;
    }, 20_000, 100);
    const takeoverMs = Date.now() - killedAt;
    assert.ok(takeoverMs < 15_000, `takeover took ${takeoverMs} ms`);
    assert.notEqual(second, first);
    // The new leader acts: a new node gets configured.
    await createNodes(client, ["l3"]);
    await waitReady(client, 3, 30_000);
    assert.ok(writes(logOf(standby)) > 0, "the new leader reconciled");

    // Graceful stop releases the lease at once.
    const exited = new Promise<number | null>((r) => standby.once("exit", (code) => r(code)));
    standby.kill("SIGTERM");
    assert.equal(await exited, 0, "SIGTERM exits 0");
    assert.equal((await lease())?.spec?.holderIdentity, "", "the lease is released on shutdown");
  });
});
