// Pure rollout tracking for the MachineConfig path: per-node state from the pool's rendered
// configs and each node's MCO annotations, matched on OUR MachineConfig (never on pool activity).
import type { NodeState } from "../api/index.js";
import { decodeDataUrl } from "./render-machineconfig.js";

export const MCO_CURRENT_CONFIG = "machineconfiguration.openshift.io/currentConfig";
export const MCO_DESIRED_CONFIG = "machineconfiguration.openshift.io/desiredConfig";
export const MCO_STATE = "machineconfiguration.openshift.io/state";
export const MCO_REASON = "machineconfiguration.openshift.io/reason";

export interface ObjectRef {
  name?: string;
  source?: Array<{ name?: string; kind?: string; apiVersion?: string }>;
}

export interface PoolCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** The fields of a MachineConfigPool tracking reads. */
export interface PoolView {
  metadata: { name: string };
  spec?: { configuration?: ObjectRef; paused?: boolean };
  status?: {
    configuration?: ObjectRef;
    machineCount?: number;
    updatedMachineCount?: number;
    readyMachineCount?: number;
    degradedMachineCount?: number;
    conditions?: PoolCondition[];
  };
}

export interface NodeView {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/**
 * What is known about a rendered MachineConfig: its sources (from the pool's spec/status
 * configuration) and, when the reconciler read the rendered object, whether it carries our
 * files byte-for-byte (false = an older version of ours, or none).
 */
export interface RenderedInfo {
  name: string;
  sources?: string[];
  hasOurContent?: boolean;
}

export interface NodeRollout {
  name: string;
  state: NodeState;
  reason: string;
  message: string;
  /** The node's current rendered config contains our MachineConfig (true), does not (false), or is unknown. */
  runsOurs: boolean | undefined;
  inPool: boolean;
}

export interface PoolSummary {
  name: string;
  machineCount: number;
  updatedMachineCount: number;
  readyMachineCount: number;
  degradedMachineCount: number;
  /** The pool's target rendered config lists our MachineConfig among its sources. */
  renderedWithOurs: boolean | undefined;
  updated: boolean;
  updating: boolean;
  /** An admin paused the pool: the MCO updates none of its nodes until it is unpaused. */
  paused: boolean;
  degraded?: { reason: string; message: string };
}

export interface RolloutInput {
  pool: PoolView | null;
  nodes: NodeView[];
  /** Our MachineConfig's name, e.g. 50-sandbox-operator-sandboxed. */
  machineConfig: string;
  /** Extra knowledge about rendered configs (e.g. from reading them); merged over what the pool says. */
  rendered?: RenderedInfo[];
  /** Which nodes are members of the pool (for our custom pool: they carry its role label). */
  inPool: (node: NodeView) => boolean;
  mode: "install" | "uninstall";
}

export interface RolloutResult {
  nodes: NodeRollout[];
  pool?: PoolSummary;
  /** install: every node Ready. uninstall: every node runs a config without ours and the pool is settled. */
  complete: boolean;
}

/** Rendered-config knowledge from the pool itself: its target (spec) and last completed (status) configuration. */
export function renderedIndex(pool: PoolView | null, extra: RenderedInfo[] = []): Map<string, RenderedInfo> {
  const idx = new Map<string, RenderedInfo>();
  for (const ref of [pool?.status?.configuration, pool?.spec?.configuration]) {
    if (!ref?.name) continue;
    idx.set(ref.name, { name: ref.name, sources: (ref.source ?? []).map((s) => s.name ?? "").filter(Boolean) });
  }
  for (const info of extra) {
    const known = idx.get(info.name);
    idx.set(info.name, { name: info.name, sources: info.sources ?? known?.sources, hasOurContent: info.hasOurContent ?? known?.hasOurContent });
  }
  return idx;
}

/** Whether a rendered config contains our MachineConfig; undefined when nothing is known about it. */
export function containsOurs(idx: Map<string, RenderedInfo>, rendered: string | undefined, machineConfig: string): boolean | undefined {
  if (!rendered) return undefined;
  const info = idx.get(rendered);
  if (!info) return undefined;
  if (info.hasOurContent === false) return false;
  if (info.sources) return info.sources.includes(machineConfig);
  return info.hasOurContent;
}

const cond = (pool: PoolView | null, type: string) => pool?.status?.conditions?.find((c) => c.type === type);

export function summarizePool(pool: PoolView, idx: Map<string, RenderedInfo>, machineConfig: string): PoolSummary {
  const s = pool.status ?? {};
  const degradedCond = ["Degraded", "NodeDegraded", "RenderDegraded"].map((t) => cond(pool, t)).find((c) => c?.status === "True");
  const summary: PoolSummary = {
    name: pool.metadata.name,
    machineCount: s.machineCount ?? 0,
    updatedMachineCount: s.updatedMachineCount ?? 0,
    readyMachineCount: s.readyMachineCount ?? 0,
    degradedMachineCount: s.degradedMachineCount ?? 0,
    renderedWithOurs: containsOurs(idx, pool.spec?.configuration?.name ?? s.configuration?.name, machineConfig),
    updated: cond(pool, "Updated")?.status === "True",
    updating: cond(pool, "Updating")?.status === "True",
    paused: pool.spec?.paused === true,
  };
  if (degradedCond) summary.degraded = { reason: degradedCond.reason || degradedCond.type, message: degradedCond.message ?? "" };
  return summary;
}

interface NodeFacts {
  name: string;
  current?: string;
  desired?: string;
  mcoState?: string;
  mcoReason?: string;
  runsOurs: boolean | undefined;
  desiredHasOurs: boolean | undefined;
  inPool: boolean;
}

function installState(f: NodeFacts, machineConfig: string): Omit<NodeRollout, "name" | "runsOurs" | "inPool"> {
  if (!f.inPool) return { state: "Pending", reason: "JoiningPool", message: `the node joins the pool once the pool's rendered config includes ${machineConfig}` };
  if (!f.current) return { state: "Pending", reason: "WaitingForMachineConfigDaemon", message: "the node has no machineconfiguration.openshift.io/currentConfig annotation yet" };
  if (f.mcoState === "Degraded" || f.mcoState === "Unreconcilable") {
    const why = f.mcoReason ? `: ${f.mcoReason}` : "";
    return { state: "Degraded", reason: f.mcoState === "Degraded" ? "MachineConfigDegraded" : "MachineConfigUnreconcilable", message: `the Machine Config Operator reports ${f.mcoState} updating ${f.current} -> ${f.desired ?? "?"}${why}` };
  }
  if (f.runsOurs === true) {
    if (f.mcoState === "Done") return { state: "Ready", reason: "MachineConfigApplied", message: `runs ${f.current}, which contains ${machineConfig}` };
    // OSC #596: the pool updates this node for someone else's change; ours is already in what it runs.
    return { state: "Ready", reason: "MachineConfigApplied", message: `runs ${f.current}, which contains ${machineConfig}; the MCO is moving it to ${f.desired ?? "?"} for another change (state ${f.mcoState ?? "unknown"})` };
  }
  if (f.desiredHasOurs === true) {
    if (f.mcoState === "Working") return { state: "Progressing", reason: "MachineConfigUpdating", message: `the MCO is applying ${f.desired} (drain, write files, reboot)` };
    return { state: "Progressing", reason: "MachineConfigQueued", message: `the node is to move from ${f.current} to ${f.desired}; the MCO has not started` };
  }
  return { state: "Pending", reason: "WaitingForRender", message: `the node runs ${f.current}; the pool has not given it a rendered config containing ${machineConfig} yet` };
}

function uninstallState(f: NodeFacts, machineConfig: string): Omit<NodeRollout, "name" | "runsOurs" | "inPool"> {
  if (f.mcoState === "Degraded" || f.mcoState === "Unreconcilable") {
    return { state: "Degraded", reason: "MachineConfigDegraded", message: `the Machine Config Operator reports ${f.mcoState} rolling back ${f.current ?? "?"} -> ${f.desired ?? "?"}${f.mcoReason ? `: ${f.mcoReason}` : ""}` };
  }
  if (f.runsOurs === false && f.mcoState === "Done") return { state: "Uninstalling", reason: "MachineConfigRemoved", message: `runs ${f.current}, without ${machineConfig}` };
  if (f.runsOurs === false) return { state: "Uninstalling", reason: "RollingBack", message: `runs ${f.current}, without ${machineConfig}; the MCO is still busy (state ${f.mcoState ?? "unknown"})` };
  return { state: "Uninstalling", reason: "RollingBack", message: `runs ${f.current ?? "?"}, which still contains ${machineConfig}; waiting for the MCO to roll it back` };
}

export function trackRollout(input: RolloutInput): RolloutResult {
  const idx = renderedIndex(input.pool, input.rendered);
  const nodes = input.nodes
    .map((n): NodeRollout => {
      const a = n.metadata.annotations ?? {};
      const f: NodeFacts = {
        name: n.metadata.name,
        current: a[MCO_CURRENT_CONFIG],
        desired: a[MCO_DESIRED_CONFIG],
        mcoState: a[MCO_STATE],
        mcoReason: a[MCO_REASON],
        runsOurs: containsOurs(idx, a[MCO_CURRENT_CONFIG], input.machineConfig),
        desiredHasOurs: containsOurs(idx, a[MCO_DESIRED_CONFIG], input.machineConfig),
        inPool: input.inPool(n),
      };
      const s = input.mode === "install" ? installState(f, input.machineConfig) : uninstallState(f, input.machineConfig);
      return { name: f.name, runsOurs: f.runsOurs, inPool: f.inPool, ...s };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pool = input.pool ? summarizePool(input.pool, idx, input.machineConfig) : undefined;
  const complete =
    input.mode === "install"
      ? nodes.length > 0 && nodes.every((n) => n.state === "Ready")
      : nodes.every((n) => n.reason === "MachineConfigRemoved") && (!pool || (pool.renderedWithOurs === false && pool.updatedMachineCount === pool.machineCount));
  return { nodes, pool, complete };
}

export interface RenderedMachineConfig {
  metadata: { name: string };
  spec?: { config?: { storage?: { files?: Array<{ path?: string; contents?: { source?: string } }> } }; extensions?: string[] };
}

/**
 * Whether a rendered MachineConfig carries exactly our current files and the extension: the
 * content check that tells a config rendered from an older version of our MachineConfig apart.
 */
export function renderedHasContent(rendered: RenderedMachineConfig, files: Array<{ path: string; content: string }>, extension: string): boolean {
  if (!(rendered.spec?.extensions ?? []).includes(extension)) return false;
  const byPath = new Map((rendered.spec?.config?.storage?.files ?? []).map((f) => [f.path, f.contents?.source]));
  return files.every((f) => {
    const source = byPath.get(f.path);
    if (source === undefined) return false;
    try {
      return decodeDataUrl(source) === f.content;
    } catch {
      return false;
    }
  });
}

/** Whether a rendered MachineConfig writes any of our paths, whatever the version of the content. */
export function renderedHasAnyPath(rendered: RenderedMachineConfig, files: Array<{ path: string }>): boolean {
  const paths = new Set((rendered.spec?.config?.storage?.files ?? []).map((f) => f.path));
  return files.some((f) => paths.has(f.path));
}
