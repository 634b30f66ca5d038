// SandboxConfig.status from the rollout plan and the RuntimeClass check: counts, per-node
// summaries, conditions (metav1.Condition semantics) and the transitions worth an Event.
import { STUCK_REASONS, type Condition, type NodeSummary, type SandboxConfig, type SandboxConfigStatus } from "../api/index.js";
import { canonical } from "./desired-node.js";
import { podList, type RolloutPlan } from "./policy-rollout.js";
import type { Refusal } from "./refusals.js";

export interface StatusInput {
  config: SandboxConfig;
  plan: RolloutPlan;
  runtimeClasses: string[];
  /** RuntimeClass names another owner holds (never overwritten). */
  conflicts: string[];
  /** Derived objects (RuntimeClasses, Node label patches) the apiserver refused, with its message. */
  refused?: Refusal[];
  platform: NonNullable<SandboxConfigStatus["platform"]>;
  now: Date;
}

type CondInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Sets conditions like apimachinery's SetStatusCondition: lastTransitionTime changes only when status flips. */
export function mergeConditions(previous: Condition[] | undefined, next: CondInput[], generation: number | undefined, now: Date): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, "Z");
    return { ...c, lastTransitionTime, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  });
}

function conditions(input: StatusInput, counts: NonNullable<SandboxConfigStatus["counts"]>): CondInput[] {
  const { plan, conflicts } = input;
  const blocked = plan.nodes.flatMap((n) => n.blockedBy);
  const stuck = plan.nodes.filter((n) => n.stuck);
  const degraded = plan.nodes.filter((n) => n.summary.state === "Degraded");
  const noUsable = degraded.filter((n) => n.summary.reason === "NoUsableBackend");
  const probed = plan.nodes.filter((n) => n.summary.state !== "Uninstalling" && n.summary.reason !== "WaitingForProbe" && n.summary.reason !== "Creating");
  const impossible = counts.selected > 0 && probed.length === counts.selected && noUsable.length === counts.selected;
  const conflictMsg = conflicts.length ? `RuntimeClass ${conflicts.join(", ")} exists and is not managed by sandbox-operator; rename spec.runtimeClassName/variants or delete that RuntimeClass` : "";
  const refused = input.refused ?? [];
  const refusedReason = refused.some((r) => r.kind === "RuntimeClass") ? "RuntimeClassRefused" : "NodeLabelRefused";
  const refusedMsg = refusedMessage(refused);

  let ready: CondInput;
  if (plan.uninstalling) ready = { type: "Ready", status: "False", reason: "Uninstalling", message: `removing sandbox runtimes from ${counts.uninstalling} node(s)` };
  else if (counts.selected === 0) ready = { type: "Ready", status: "False", reason: "NoNodesSelected", message: "spec.nodeSelector matches no Node" };
  else if (impossible) ready = { type: "Ready", status: "False", reason: "NoUsableBackend", message: `no selected node can run any allowed runtime (${input.config.spec.runtimes.allowed.join(", ")})` };
  else if (conflicts.length) ready = { type: "Ready", status: "False", reason: "RuntimeClassConflict", message: conflictMsg };
  else if (refused.length) ready = { type: "Ready", status: "False", reason: refusedReason, message: refusedMsg };
  else if (counts.ready === counts.selected) ready = { type: "Ready", status: "True", reason: "AllNodesReady", message: `${counts.ready}/${counts.selected} nodes verified` };
  else if (counts.ready > 0) ready = { type: "Ready", status: "False", reason: "PartiallyReady", message: `${counts.ready}/${counts.selected} nodes verified` };
  else ready = { type: "Ready", status: "False", reason: "NoNodeReady", message: `0/${counts.selected} nodes verified` };

  let progressing: CondInput;
  const moving = counts.progressing + counts.uninstalling + plan.nodes.filter((n) => n.summary.state === "Pending").length;
  if (blocked.length) progressing = { type: "Progressing", status: "True", reason: "UninstallBlockedByPods", message: `uninstall waits for ${blocked.length} pod(s) using sandbox RuntimeClasses: ${podList(blocked)}; delete them or set spec.uninstall.whenPodsRun: Proceed` };
  else if (stuck.length) progressing = { type: "Progressing", status: "True", reason: "UninstallStuck", message: `${stuck.length} node(s) did not finish reverting within spec.uninstall.nodeTimeoutSeconds: ${stuck.slice(0, 10).map((n) => `${n.name} (${n.summary.reason}: ${n.summary.message})`).join("; ")}; ${counts.uninstalling - stuck.length} other node(s) left to revert` };
  else if (plan.uninstalling) progressing = { type: "Progressing", status: "True", reason: "Uninstalling", message: `${counts.uninstalling} node(s) left to revert` };
  else if (counts.uninstalling) progressing = { type: "Progressing", status: "True", reason: "RevertingDeselectedNodes", message: `${counts.uninstalling} node(s) left the selector and are being reverted` };
  else if (moving) progressing = { type: "Progressing", status: "True", reason: "RollingOut", message: `${counts.progressing} node(s) applying, ${moving - counts.progressing} waiting (maxUnavailable ${plan.budget})` };
  else progressing = { type: "Progressing", status: "False", reason: "RolloutComplete", message: "every selected node runs the current configuration" };

  let degradedCond: CondInput;
  if (impossible) degradedCond = { type: "Degraded", status: "True", reason: "NoUsableBackend", message: `no selected node can run any allowed runtime: ${noUsable.slice(0, 3).map((n) => `${n.name}: ${n.summary.message}`).join("; ")}; allow a runtime these nodes support or select other nodes` };
  else if (conflicts.length) degradedCond = { type: "Degraded", status: "True", reason: "RuntimeClassConflict", message: conflictMsg };
  else if (refused.length) degradedCond = { type: "Degraded", status: "True", reason: refusedReason, message: refusedMsg };
  else if (degraded.length) degradedCond = { type: "Degraded", status: "True", reason: "NodesDegraded", message: `${degraded.length} node(s) degraded: ${degraded.slice(0, 10).map((n) => `${n.name} (${n.summary.reason})`).join(", ")}` };
  else degradedCond = { type: "Degraded", status: "False", reason: "AsExpected", message: "no node is degraded" };
  return [ready, progressing, degradedCond];
}

/** What the apiserver said about each refused write (first three), and what to do. */
function refusedMessage(refused: Refusal[]): string {
  if (!refused.length) return "";
  const what = (r: Refusal) => (r.kind === "RuntimeClass" ? `RuntimeClass ${r.name}` : `labels of Node ${r.name}`);
  const shown = refused.slice(0, 3).map((r) => `${what(r)}: ${r.message}`).join("; ");
  const more = refused.length > 3 ? `; and ${refused.length - 3} more` : "";
  return `the apiserver refused ${refused.length} write(s): ${shown}${more}; fix the SandboxConfig field it names or the admission policy that refuses it (retried every 30 s and on every change)`;
}

export function desiredStatus(input: StatusInput): SandboxConfigStatus {
  const nodes: NodeSummary[] = input.plan.nodes.map((n) => n.summary);
  const count = (s: NodeSummary["state"]) => nodes.filter((n) => n.state === s).length;
  const counts = { selected: input.plan.selected, ready: count("Ready"), progressing: count("Progressing"), degraded: count("Degraded"), uninstalling: count("Uninstalling") };
  const generation = input.config.metadata.generation;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    counts,
    nodes,
    runtimeClasses: [...input.runtimeClasses].sort(),
    platform: input.platform,
    conditions: mergeConditions(input.config.status?.conditions, input.plan.conditions ?? conditions(input, counts), generation, input.now),
  };
}

/** Semantic equality: what a status write would change. */
export const sameStatus = (a: SandboxConfigStatus | undefined, b: SandboxConfigStatus) => canonical(a ?? {}) === canonical(b);

export interface Transition {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/**
 * Node state changes, one Event per (state, reason) group, not per node: a 1000-node rollout
 * writes a handful of Events per status update instead of thousands.
 */
function nodeTransitions(before: SandboxConfigStatus | undefined, after: SandboxConfigStatus): Transition[] {
  const old = new Map((before?.nodes ?? []).map((n) => [n.name, n]));
  const groups = new Map<string, NodeSummary[]>();
  for (const n of after.nodes ?? []) {
    const o = old.get(n.name);
    if (o?.state === n.state && o?.reason === n.reason) continue;
    const key = `${n.state}|${n.reason ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), n]);
  }
  const out: Transition[] = [];
  for (const nodes of groups.values()) {
    const { state, reason } = nodes[0]!;
    const warn = state === "Degraded" || reason === "PodsRunning" || STUCK_REASONS.includes(reason as (typeof STUCK_REASONS)[number]) || reason === "Abandoned";
    const names = nodes.length === 1 && nodes[0]!.message ? `${nodes[0]!.name}: ${nodes[0]!.message}` : podList(nodes.map((n) => n.name));
    out.push({ type: warn ? "Warning" : "Normal", reason: `Node${state}`, message: `${nodes.length} node(s) ${state}${reason ? ` (${reason})` : ""}: ${names}` });
  }
  const now = new Set((after.nodes ?? []).map((n) => n.name));
  const removed = (before?.nodes ?? []).filter((n) => !now.has(n.name)).map((n) => n.name);
  if (removed.length) out.push({ type: "Normal", reason: "NodeRemoved", message: `${removed.length} node(s) reverted and released: ${podList(removed)}` });
  return out;
}

/** Node state changes and condition flips between two statuses, for Events. */
export function transitions(before: SandboxConfigStatus | undefined, after: SandboxConfigStatus): Transition[] {
  const out = nodeTransitions(before, after);
  for (const c of after.conditions ?? []) {
    const o = before?.conditions?.find((p) => p.type === c.type);
    if (o?.status === c.status && o?.reason === c.reason) continue;
    const warn = (c.type === "Degraded" && c.status === "True") || c.reason === "UninstallBlockedByPods" || c.reason === "UninstallStuck";
    out.push({ type: warn ? "Warning" : "Normal", reason: c.reason, message: `${c.type}=${c.status}: ${c.message}` });
  }
  return out;
}
