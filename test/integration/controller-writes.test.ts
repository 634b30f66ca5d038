// The controller's API writes per node on the happy path, counted by the real apiserver
// (apiserver_request_total): one SandboxNode create and two Node label patches, nothing when idle.
// Three, not issue 12's two: the agent DaemonSet runs only on labelled nodes (docs/controller.md).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/kube/client.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { apiserverRequests, diffCounts, writes, type RequestCounts } from "../harness/apiserver-metrics.js";
import { AGENT_LABEL, configObject, createNodes, eventually, resetCluster, setupEnv, startAgent, startController, waitReady, type Env } from "./controller-helpers.js";

const N = 30;
const names = Array.from({ length: N }, (_, i) => `w${String(i).padStart(2, "0")}`);
const WANT = { ...AGENT_LABEL, "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true" };

/** Writes by the controller: everything but the agents' SandboxNode status, the test's config create and kube-apiserver's own Lease. */
function controllerWrites(d: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const [k, v] of Object.entries(d)) if (writes({ [k]: v }) && !k.endsWith(" sandboxnodes/status") && !k.endsWith(" leases")) out[k] = v;
  out["POST sandboxconfigs"] = (out["POST sandboxconfigs"] ?? 0) - 1;
  if (!out["POST sandboxconfigs"]) delete out["POST sandboxconfigs"];
  return out;
}

describe("controller API writes per node (apiserver_request_total)", { timeout: 180_000 }, () => {
  let env: Env;
  let agent: SimulatedAgent;
  let ctl: Awaited<ReturnType<typeof startController>>;

  before(async () => {
    env = await setupEnv();
    await createNodes(env.client, names);
    agent = await startAgent(env, { resyncMs: 0 });
    ctl = await startController(env);
  });

  after(async () => {
    await resetCluster(env.client).catch(() => undefined);
    await ctl?.stop();
    await agent?.stop();
    await env?.stop();
  });

  it(`${N} nodes from nothing to Ready: exactly three writes each (SandboxNode create, agent label, runtime labels), then no writes while nothing changes`, async () => {
    const before = await apiserverRequests(env.client);
    await env.client.create(configObject({ rollout: { maxUnavailable: "100%" } }));
    await waitReady(env.client, N, 60_000);
    await eventually("every node labelled", async () => {
      const nodes = (await env.client.list<KubeObject>("Node")).items;
      return nodes.every((n) => Object.entries(WANT).every(([k, v]) => n.metadata.labels?.[k] === v));
    });
    // Let any late write land (status throttle is 100 ms here) before counting.
    await new Promise((r) => setTimeout(r, 1500));
    const settled = await apiserverRequests(env.client);
    const got = controllerWrites(diffCounts(before, settled));
    const perNode = writes(got, ["nodes"]) + writes(got, ["sandboxnodes"]);
    assert.equal(writes(got, ["sandboxnodes"]), N, `one SandboxNode write per node (create with fromConfig and proceed); got ${JSON.stringify(got)}`);
    assert.equal(writes(got, ["nodes"]), 2 * N, `two Node label patches per node (the agent label when selected, the runtime labels once verified); got ${JSON.stringify(got)}`);
    assert.equal(perNode, 3 * N, `exactly three writes per node, got ${perNode} for ${N}`);
    assert.deepEqual([...agent.unscheduled], [], "every agent found its Node labelled (the label goes before the SandboxNode)");
    // The rest does not grow with N: finalizer, RuntimeClasses (3 + 3 verification), status (throttled, written on change), grouped Events.
    const rest = writes(got) - perNode;
    assert.ok(rest <= 25, `writes not per node stay few: ${rest} (${JSON.stringify(got)})`);

    // Idle: nothing changes, so the controller writes nothing (status only on change, no periodic relist).
    await new Promise((r) => setTimeout(r, 3000));
    const idleAll = diffCounts(settled, await apiserverRequests(env.client));
    const idle = controllerWrites(idleAll);
    delete idle["POST sandboxconfigs"];
    assert.deepEqual(idle, {}, "no writes while nothing changes");
    assert.deepEqual(Object.keys(idleAll).filter((k) => k.startsWith("LIST ")), [], "no relists while the watches are healthy");
  });
});
