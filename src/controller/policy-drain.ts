// The drain decisions of spec.rollout.drain (pure): whether a node granted a rollout slot must be
// drained first, the labels that cordon it and record the start, and its state while draining.
import type { NodeSummary, SandboxConfig } from "../api/index.js";
import type { NodeView } from "./policy-rollout.js";

/** What a drain still has to move off a node (drain.ts lists it for nodes carrying DRAIN_LABEL). */
export interface DrainView {
  /** Evictable pods (namespace/name) still on the node, terminating ones included. */
  pods: string[];
  /** The last eviction the apiserver refused there (a PodDisruptionBudget), with its message. */
  refused?: string;
}

/** On a Node while our drain runs (until the node is verified): the drain's start, in unix seconds. */
export const DRAIN_LABEL = "sandboxing.dev/drain";
/** On a Node our drain cordoned (spec.unschedulable set by us, cleared with this label; an admin's cordon has none). */
export const CORDON_LABEL = "sandboxing.dev/cordoned";
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 600;

export const drainEnabled = (config: SandboxConfig | null) => !!config && config.spec.rollout?.drain === true;

/** Our drain labels on a Node (kept while the node changes after its drain, dropped once it is settled). */
export const drainLabels = (node: NodeView | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(node?.labels ?? {}).filter(([k]) => k === DRAIN_LABEL || k === CORDON_LABEL));

const list = (pods: string[], max = 10) => (pods.length <= max ? pods.join(", ") : `${pods.slice(0, max).join(", ")} and ${pods.length - max} more`);

export interface DrainStepInput {
  config: SandboxConfig;
  node: NodeView;
  /** undefined: the drain has not started (or its pods were not listed yet). */
  view?: DrainView;
  kind: "apply" | "revert";
  now: number;
}

/**
 * undefined when the node is drained (the drain started and no evictable pod is left): the agent
 * may proceed. Otherwise the labels the node carries while draining (a cordon of ours unless an
 * admin cordoned it), its summary (Draining, or DrainBlocked past drainTimeoutSeconds; it then
 * stays cordoned and keeps its slot, as kubectl drain --timeout leaves a node) and the deadline.
 */
export function drainStep(i: DrainStepInput): { labels: Record<string, string>; summary: NodeSummary; deadline?: number } | undefined {
  const { node, view } = i;
  if (node.labels[DRAIN_LABEL] && view && view.pods.length === 0) return undefined;
  const started = Number(node.labels[DRAIN_LABEL]) * 1000;
  const since = Number.isFinite(started) && started > 0 ? started : i.now;
  const cordon = node.labels[CORDON_LABEL] !== undefined || !node.unschedulable;
  const labels = { [DRAIN_LABEL]: String(Math.floor(since / 1000)), ...(cordon ? { [CORDON_LABEL]: "true" } : {}) };
  const timeoutS = i.config.spec.rollout?.drainTimeoutSeconds ?? DEFAULT_DRAIN_TIMEOUT_SECONDS;
  const pods = view?.pods ?? [];
  const left = view ? `${pods.length} pod(s) left to evict${pods.length ? `: ${list(pods)}` : ""}` : "listing its pods";
  const deadline = since + timeoutS * 1000;
  if (i.now >= deadline) {
    const message = `the drain did not finish within spec.rollout.drainTimeoutSeconds (${timeoutS}s): ${view?.refused ?? left}; the node stays cordoned and keeps its rollout slot, so the rollout waits here: let the PodDisruptionBudget allow the eviction (more replicas), move or delete the pod, or set spec.rollout.drain: false`;
    return { labels, summary: { name: node.name, state: "Degraded", reason: "DrainBlocked", message } };
  }
  const message = `cordoned before its runtime restarts; ${left}${view?.refused ? ` (${view.refused})` : ""}`;
  return { labels, deadline, summary: { name: node.name, state: i.kind === "apply" ? "Progressing" : "Uninstalling", reason: "Draining", message } };
}
