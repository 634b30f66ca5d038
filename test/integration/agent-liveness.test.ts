// The agent's /healthz with its real loop, watch and HTTP server against the real apiserver: a
// long apply keeps it passing, a quiet healthy watch too, and it fails once the apiserver is gone.
// Only the node work is played by the test (an apply that takes as long as the test says).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { probeFor } from "../harness/simulated-agent.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { logger } from "../../src/telemetry/logger.js";
import { AgentLoop } from "../../src/agent/loop.js";
import { serveHealth } from "../../src/agent/health-server.js";
import type { NodeAgent } from "../../src/agent/apply.js";
import type { Desired, Outcome } from "../../src/agent/outcome.js";
import type { SandboxNode } from "../../src/api/index.js";

const NODE = "live-1";
const LIMITS = { watchDeadAfterMs: 2_000, passStuckAfterMs: 60_000 };
const APPLY_MS = 8_000; // four times the watch-dead limit: heartbeat passes queue behind it

/** The node work: an apply that takes APPLY_MS (restart + image pull + verification on a real node). */
function slowAgent() {
  let applied: string | undefined;
  const calls = { applies: 0 };
  const probe = probeFor(["gvisor"]);
  const agent = {
    inventory: undefined,
    state: { state: () => (applied ? { appliedHash: applied, handlers: [] } : undefined) },
    probe: async () => probe,
    startup: async () => null,
    apply: async (desired: Desired, onPhase: (p: "Verifying") => Promise<void>): Promise<Outcome> => {
      calls.applies++;
      await new Promise((r) => setTimeout(r, APPLY_MS / 2));
      await onPhase("Verifying");
      await new Promise((r) => setTimeout(r, APPLY_MS / 2));
      applied = desired.hash;
      return { ok: true, phase: "Applied", reason: "Verified", message: "verified", handlers: [], restarted: true, changed: [], durationMs: APPLY_MS };
    },
    revert: async () => {
      throw new Error("not used");
    },
  };
  return { agent: agent as unknown as NodeAgent, calls };
}

async function healthz(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: res.status, body: await res.text() };
}

describe("agent liveness (/healthz) against the real apiserver", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let agentClient: KubeClient;
  let loop: AgentLoop;
  let server: Server;
  let port: number;
  let running: Promise<void>;
  const { agent, calls } = slowAgent();

  before(async () => {
    cp = await startControlPlane();
    admin = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(admin);
    agentClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-agent" });
    const log = logger("agent", { node: NODE });
    loop = new AgentLoop({ kube: agentClient, nodeName: NODE, agent, log, agentVersion: "test", heartbeatMs: 500 });
    server = serveHealth(loop, 0, LIMITS, log);
    await new Promise((r) => server.once("listening", r));
    port = (server.address() as AddressInfo).port;
    running = loop.run();
  });
  after(async () => {
    loop?.stop();
    await running;
    server?.close();
    agentClient?.close();
    admin?.close();
    await cp?.stop();
  });

  it("a long apply keeps /healthz passing; a quiet open watch too; then the apiserver dies and /healthz fails", async () => {
    await eventually("/healthz answers 200 with the watch open", async () => (await healthz(port)).body === "watch open");
    await admin.create({
      apiVersion: "sandboxing.dev/v1alpha1",
      kind: "SandboxNode",
      metadata: { name: NODE },
      spec: { action: "Apply", proceed: true, desired: { hash: "h1", handlers: [{ name: "sandboxed", backend: "gvisor", general: true }] } },
    } as KubeObject);
    await eventually("the apply started", async () => calls.applies === 1);
    const during: Array<{ status: number; body: string }> = [];
    const applied = async () => (await admin.get<SandboxNode & KubeObject>("SandboxNode", NODE)).status?.phase === "Applied";
    while (!(await applied())) {
      during.push(await healthz(port));
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(during.length >= (APPLY_MS / 250) * 0.7, `polled /healthz through the apply (${during.length} times)`);
    assert.deepEqual(during.filter((h) => h.status !== 200), [], "every /healthz during the apply passed");
    assert.ok(during.some((h) => /applying for [4-9] s/.test(h.body)), `the body says how long it has been applying: ${during.at(-1)?.body}`);

    // A healthy watch with nothing to say, for twice the limit: still alive.
    const quiet = Date.now();
    while (Date.now() - quiet < 2 * LIMITS.watchDeadAfterMs) {
      const h = await healthz(port);
      assert.equal(h.status, 200, `quiet watch: ${h.body}`);
      await new Promise((r) => setTimeout(r, 250));
    }

    // The apiserver goes away: the watch ends, relists fail; after the limit /healthz says why.
    process.kill(cp.pids[1]!, "SIGKILL");
    const killedAt = Date.now();
    let last = await healthz(port);
    while (last.status === 200) {
      assert.ok(Date.now() - killedAt < LIMITS.watchDeadAfterMs + 10_000, `still healthy ${Date.now() - killedAt} ms after the apiserver died: ${last.body}`);
      await new Promise((r) => setTimeout(r, 200));
      last = await healthz(port);
    }
    assert.equal(last.status, 503);
    assert.match(last.body, /^SandboxNode watch down for \d+ s \(limit 2 s\): \S+/, "the body names the failure");
    assert.ok(Date.now() - killedAt >= LIMITS.watchDeadAfterMs, "not before the limit");
  });
});
