import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { matchesSelector, planRollout, resolveMaxUnavailable, type NodeView } from "./policy-rollout.js";
import { desiredInputs, desiredNode } from "./desired-node.js";
import { probeFor } from "../../test/harness/simulated-agent.js";
import type { SandboxConfig, SandboxNode, SandboxConfigSpec } from "../api/index.js";

const config = (s: Partial<SandboxConfigSpec> = {}, deleting = false): SandboxConfig => ({
  apiVersion: "sandboxing.dev/v1alpha1",
  kind: "SandboxConfig",
  metadata: { name: "cluster", generation: 1, uid: "u", ...(deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}) },
  spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor"] }, ...s },
});
const nodes = (...names: string[]): NodeView[] => names.map((name) => ({ name, uid: name, labels: {} }));
const AGENT = { "sandboxing.dev/agent": "true" };
/** Nodes our configuration already reached (they carry the agent label). */
const reached = (...names: string[]): NodeView[] => names.map((name) => ({ name, uid: name, labels: { ...AGENT } }));
const desired = desiredNode(config().spec, probeFor(["gvisor"]));
const sn = (name: string, spec: Partial<SandboxNode["spec"]>, status: SandboxNode["status"] = { probe: probeFor(["gvisor"]) }): SandboxNode => ({
  apiVersion: "sandboxing.dev/v1alpha1",
  kind: "SandboxNode",
  metadata: { name, uid: name },
  spec: { action: "Apply", proceed: false, configGeneration: 1, fromConfig: desiredInputs(config().spec), desired, ...spec },
  status,
});
const applied = { probe: probeFor(["gvisor"]), appliedHash: desired.hash, phase: "Applied" as const, handlers: desired.handlers.map((h) => ({ name: h.name, backend: h.backend, verified: true })) };

describe("planRollout", () => {
  it("a revert past spec.uninstall.nodeTimeoutSeconds is reported with why and frees its slot; an abandoned node is released", () => {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const cfg = config({ rollout: { maxUnavailable: 1 }, uninstall: { nodeTimeoutSeconds: 60 } }, true);
    const reverting = (name: string, status: SandboxNode["status"]): SandboxNode => ({ ...sn(name, { action: "Revert", proceed: true }, status), metadata: { name, uid: name, generation: 3, annotations: { "sandboxing.dev/revert-requested": new Date(t0).toISOString() } } });
    const input = { config: cfg, nodes: reached("a", "b", "c"), pods: [], sandboxNodes: [reverting("a", { ...applied, observedGeneration: 2 }), reverting("b", { ...applied, observedGeneration: 3, phase: "Failed" }), sn("c", {}, applied)] };
    const early = planRollout({ ...input, now: t0 + 59_000 });
    assert.deepEqual(early.nodes.map((n) => [n.name, n.summary.reason, !!n.stuck]), [["a", "Reverting", false], ["b", "Reverting", false], ["c", "WaitingForRollout", false]]);
    assert.equal(early.wakeAfterMs, 1050, "the controller looks again when the first deadline passes");
    const late = planRollout({ ...input, now: t0 + 60_000 });
    assert.deepEqual(late.nodes.map((n) => [n.name, n.summary.reason, !!n.stuck]), [["a", "AgentNotResponding", true], ["b", "RevertFailed", true], ["c", "Reverting", false]], "stuck nodes hold no slot: c reverts");
    assert.equal(late.nodes[2]!.spec?.action, "Revert");
    assert.match(late.nodes[0]!.summary.message!, /sandboxctl uninstall --abandon-node a/);
    const abandoned = { ...reverting("a", applied), metadata: { name: "a", uid: "a", annotations: { "sandboxing.dev/abandon": "true" } } };
    const gone = planRollout({ ...input, sandboxNodes: [abandoned], now: t0 });
    assert.deepEqual(gone.nodes.map((n) => [n.delete, n.labels, n.summary.reason]), [[true, {}, "Abandoned"]]);
  });

  it("creates a SandboxNode per selected node with fromConfig and the gate's proceed: one write", () => {
    const p = planRollout({ config: config({ nodeSelector: { matchLabels: { a: "1" } } }), nodes: [{ name: "x", labels: { a: "1" } }, { name: "y", labels: {} }], sandboxNodes: [] });
    assert.deepEqual(p.nodes.map((n) => [n.name, n.spec?.proceed, n.spec?.desired, n.spec?.fromConfig, n.summary.reason]), [["x", true, undefined, desiredInputs(config().spec), "Applying"]]);
    const gated = planRollout({ config: config({ rollout: { maxUnavailable: 1 } }), nodes: nodes("a", "b"), sandboxNodes: [] });
    assert.deepEqual(gated.nodes.map((n) => [n.spec?.proceed, n.summary.reason]), [[true, "Applying"], [false, "Creating"]], "the gate holds at creation too");
  });

  it("the happy path from fromConfig: no spec write after the create, the agent label at once, runtime labels when verified", () => {
    const fc = { action: "Apply" as const, proceed: true, configGeneration: 1, fromConfig: desiredInputs(config().spec) };
    const unpinned = (name: string, status: SandboxNode["status"]): SandboxNode => ({ ...sn(name, {}, status), spec: fc });
    const all = config({ rollout: { maxUnavailable: "100%" } });
    const probed = planRollout({ config: all, nodes: nodes("a", "b"), sandboxNodes: [unpinned("a", undefined), unpinned("b", { probe: probeFor(["gvisor"]), phase: "Applying" })] });
    assert.deepEqual(probed.nodes.map((n) => [n.spec, n.labels, n.summary.state]), [[undefined, AGENT, "Progressing"], [undefined, AGENT, "Progressing"]]);
    assert.equal(probed.inProgress, 2);
    const done = planRollout({ config: all, nodes: nodes("a"), sandboxNodes: [unpinned("a", applied)] });
    assert.deepEqual([done.nodes[0]!.spec, done.nodes[0]!.summary.state], [undefined, "Ready"], "settled: proceed kept, no write");
    assert.deepEqual(done.nodes[0]!.labels, { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true", ...AGENT });
    const changed = planRollout({ config: config({ logLevel: "debug", rollout: { maxUnavailable: "100%" } }), nodes: reached("a"), sandboxNodes: [unpinned("a", applied)] });
    const spec = changed.nodes[0]!.spec!;
    assert.deepEqual([spec.proceed, spec.desired?.hash, spec.desired?.hash === desired.hash], [true, desiredNode(config({ logLevel: "debug" }).spec, probeFor(["gvisor"])).hash, false], "a change after install pins desired");
  });

  it("opens at most maxUnavailable slots, keeping the ones in progress", () => {
    const sns = [sn("a", { proceed: true }), sn("b", {}), sn("c", {}), sn("d", {})];
    const p = planRollout({ config: config({ rollout: { maxUnavailable: 2 } }), nodes: nodes("a", "b", "c", "d"), sandboxNodes: sns });
    assert.equal(p.inProgress, 2);
    assert.deepEqual(p.nodes.map((n) => n.summary.state), ["Progressing", "Progressing", "Pending", "Pending"]);
    assert.equal(p.nodes[0]!.spec, undefined, "a's spec is unchanged: no write");
  });

  it("a done node frees its slot and earns labels for verified handlers", () => {
    const p = planRollout({ config: config(), nodes: nodes("a", "b"), sandboxNodes: [sn("a", { proceed: true }, applied), sn("b", {})] });
    assert.deepEqual(p.nodes[0]!.labels, { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true", "sandboxing.dev/agent": "true" });
    assert.equal(p.nodes[1]!.spec?.proceed, true);
  });

  it("a failed node is Degraded and frees its slot", () => {
    const failed = { probe: probeFor(["gvisor"]), failedHash: desired.hash, phase: "Failed" as const, conditions: [{ type: "Degraded", status: "True" as const, reason: "VerificationFailed", message: "boom", lastTransitionTime: "2026-01-01T00:00:00Z" }] };
    const p = planRollout({ config: config(), nodes: nodes("a", "b"), sandboxNodes: [sn("a", { proceed: true }, failed), sn("b", {})] });
    assert.deepEqual([p.nodes[0]!.summary.state, p.nodes[0]!.summary.message, p.nodes[0]!.labels], ["Degraded", "boom", AGENT], "no runtime label for a node that never verified; its agent keeps running");
    assert.equal(p.nodes[1]!.spec?.proceed, true);
  });

  it("a deselected node loses its labels and waits for pods before it reverts", () => {
    const input = { config: config({ nodeSelector: { matchLabels: { keep: "1" } } }), nodes: reached("a"), sandboxNodes: [sn("a", {}, applied)] };
    const first = planRollout(input);
    assert.equal(first.needPods, true);
    const blocked = planRollout({ ...input, pods: [{ namespace: "ns", name: "p", nodeName: "a", runtimeClassName: "sandboxed" }] });
    assert.deepEqual([blocked.nodes[0]!.labels, blocked.nodes[0]!.blockedBy, blocked.nodes[0]!.summary.reason], [{ "sandboxing.dev/agent": "true" }, ["ns/p"], "PodsRunning"]);
    const free = planRollout({ ...input, pods: [] });
    assert.deepEqual([free.nodes[0]!.spec?.action, free.nodes[0]!.spec?.proceed], ["Revert", true]);
  });

  it("deletes the SandboxNode once reverted, or at once when nothing was ever applied", () => {
    const reverted = sn("a", { action: "Revert", proceed: true }, { phase: "Reverted", appliedHash: "" });
    const fresh: SandboxNode = { ...sn("b", {}), spec: { action: "Apply", proceed: false } };
    const p = planRollout({ config: config({}, true), nodes: nodes("a", "b"), sandboxNodes: [reverted, fresh] });
    assert.deepEqual(p.nodes.map((n) => n.delete), [true, true]);
    assert.deepEqual(p.nodes.map((n) => n.labels), [{}, {}], "the agent label goes with the SandboxNode (the installer removes it after the delete)");
  });

  it("the agent label: set with the SandboxNode (the DaemonSet runs only where it is), runtime labels in one more patch, kept while reverting, swept from nodes with nothing of ours", () => {
    const fresh = planRollout({ config: config({ nodeSelector: { matchLabels: { a: "1" } } }), nodes: [{ name: "x", labels: { a: "1" } }], sandboxNodes: [] });
    assert.deepEqual([fresh.nodes[0]!.spec?.action, fresh.nodes[0]!.labels], ["Apply", AGENT], "the agent label in the pass that creates the SandboxNode");
    const verified = planRollout({ config: config(), nodes: nodes("a"), sandboxNodes: [sn("a", { proceed: true }, applied)] });
    assert.deepEqual(verified.nodes[0]!.labels, { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true", ...AGENT }, "verified: the runtime labels join the agent label");
    const reconfiguring = planRollout({ config: config({ logLevel: "debug" }), nodes: reached("a"), sandboxNodes: [sn("a", { proceed: true }, applied)] });
    assert.deepEqual(reconfiguring.nodes[0]!.labels, AGENT, "runtime labels go while the node changes, the agent label stays");
    const reverting = planRollout({ config: config({}, true), nodes: reached("a"), sandboxNodes: [sn("a", { action: "Revert", proceed: true }, { ...applied, phase: "Reverting" })] });
    assert.deepEqual([reverting.nodes[0]!.delete, reverting.nodes[0]!.labels], [false, { "sandboxing.dev/agent": "true" }]);
    const stray = planRollout({ config: config({ nodeSelector: { matchLabels: { a: "1" } } }), nodes: [{ name: "y", labels: { "sandboxing.dev/agent": "true", "sandboxing.dev/runtime.gvisor": "true" } }, { name: "z", labels: {} }], sandboxNodes: [] });
    assert.deepEqual([stray.nodes, stray.release], [[], ["y"]]);
  });

  it("uninstall respects maxUnavailable", () => {
    const sns = ["a", "b", "c"].map((n) => sn(n, {}, applied));
    const p = planRollout({ config: config({ rollout: { maxUnavailable: 1 } }, true), nodes: nodes("a", "b", "c"), sandboxNodes: sns, pods: [] });
    assert.deepEqual(p.nodes.map((n) => n.spec?.action === "Revert" && n.spec.proceed), [true, false, false]);
  });

  it("a changed config keeps proceed off for nodes without a slot (written with the new hash)", () => {
    const newSpec = config({ logLevel: "debug" });
    const p = planRollout({ config: newSpec, nodes: nodes("a", "b"), sandboxNodes: [sn("a", { proceed: true }, applied), sn("b", { proceed: true }, applied)] });
    assert.deepEqual(p.nodes.map((n) => [n.spec?.proceed, n.spec?.desired?.hash !== desired.hash]), [[true, true], [false, true]]);
    assert.deepEqual(p.nodes[1]!.labels, { "sandboxing.dev/runtime.sandboxed": "true", "sandboxing.dev/runtime.gvisor": "true", "sandboxing.dev/agent": "true" }, "b keeps serving its verified handlers until its turn");
  });
});

describe("selectors and maxUnavailable", () => {
  it("matches like metav1.LabelSelector", () => {
    const l = { zone: "a", gpu: "" };
    assert.ok(matchesSelector({}, l));
    assert.ok(matchesSelector({ matchLabels: { zone: "a" }, matchExpressions: [{ key: "gpu", operator: "Exists" }] }, l));
    assert.ok(!matchesSelector({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, l));
    assert.ok(matchesSelector({ matchExpressions: [{ key: "x", operator: "DoesNotExist" }] }, l));
  });
  it("resolves int or percent, at least 1", () => {
    assert.deepEqual([resolveMaxUnavailable(undefined, 10), resolveMaxUnavailable(3, 10), resolveMaxUnavailable("25%", 10), resolveMaxUnavailable("1%", 10)], [1, 3, 2, 1]);
  });
});
