// The rollout and uninstall decisions for every node, as one pure function of what the cache
// shows: which SandboxNodes to create, change or delete, which runtime labels each Node carries,
// and who may proceed now within maxUnavailable. The shell (installer-daemonset.ts) applies it.
import { ABANDON_ANNOTATION, AGENT_NODE_LABEL, AGENT_NODE_LABEL_VALUE, REVERT_SINCE_ANNOTATION, type Condition, type LabelSelector, type NodeSummary, type Probe, type SandboxConfig, type SandboxNode, type SandboxNodeSpec } from "../api/index.js";
import { canonical, desiredInputs, desiredNode, specDesiredFor, type DesiredNode } from "./desired-node.js";
import { RUNTIME_LABEL_PREFIX, runtimeLabel } from "./desired-runtimeclasses.js";
import { CORDON_LABEL, DRAIN_LABEL, drainEnabled, drainLabels, drainStep, type DrainView } from "./policy-drain.js";

export { CORDON_LABEL, DRAIN_LABEL, type DrainView } from "./policy-drain.js";

export interface NodeView {
  name: string;
  uid?: string;
  labels: Record<string, string>;
  /** spec.unschedulable: cordoned (by an admin, or by our drain with CORDON_LABEL). */
  unschedulable?: boolean;
}

export interface PodView {
  namespace: string;
  name: string;
  nodeName: string;
  runtimeClassName: string;
}

export interface RolloutInput {
  /** null, or with deletionTimestamp: every node is uninstalled. */
  config: SandboxConfig | null;
  nodes: NodeView[];
  sandboxNodes: SandboxNode[];
  /** Pods that use one of our RuntimeClasses; undefined = not listed yet (the plan asks for them). */
  pods?: PodView[];
  /** The clock (ms since the epoch): revert and drain deadlines are measured against it. */
  now?: number;
  /** Per node carrying DRAIN_LABEL: what is left to evict; a node without a view is not drained yet. */
  drain?: Record<string, DrainView>;
}

export const DEFAULT_NODE_TIMEOUT_SECONDS = 600;
const nodeTimeoutMs = (config: SandboxConfig | null) => (config?.spec.uninstall?.nodeTimeoutSeconds ?? DEFAULT_NODE_TIMEOUT_SECONDS) * 1000;

export interface NodePlan {
  name: string;
  /** The SandboxNode spec we want; undefined when the object should be deleted or left alone. */
  spec?: SandboxNodeSpec;
  /** Delete the SandboxNode (revert confirmed, or nothing was ever applied). */
  delete: boolean;
  /**
   * Our labels the Node should carry (sandboxing.dev/runtime.* and, while a SandboxNode exists,
   * the agent label); undefined when the Node is gone. On a delete plan the agent label goes
   * only after the SandboxNode is deleted: the agent must run until its revert is confirmed.
   */
  labels?: Record<string, string>;
  summary: NodeSummary;
  /** Pods (namespace/name) that hold this node's uninstall. */
  blockedBy: string[];
  /** Annotations of ours the SandboxNode carries with this spec (REVERT_SINCE_ANNOTATION). */
  annotations?: Record<string, string>;
  /** Its revert outlived spec.uninstall.nodeTimeoutSeconds: reported, no longer holding a slot. */
  stuck?: boolean;
  /** The node is cordoned by this plan's labels and its pods are to be evicted (spec.rollout.drain). */
  evict?: boolean;
}

export interface RolloutPlan {
  nodes: NodePlan[];
  budget: number;
  /** Nodes changing (apply or revert) after this plan is applied. */
  inProgress: number;
  /** Set when a node waits on pods and the input had none listed: list them and plan again. */
  needPods: boolean;
  selected: number;
  uninstalling: boolean;
  /** The SandboxConfig generation (and uid) this plan was computed from. */
  generation?: number;
  configUid?: string;
  /** Nodes with none of our objects that still carry one of our labels (e.g. a crash between delete and unlabel): unlabel them. */
  release: string[];
  /** Conditions the installer decided itself (MachineConfig path, unavailable install method); the status writer stamps them. */
  conditions?: Array<Omit<Condition, "lastTransitionTime" | "observedGeneration">>;
  /** Bad input: change nothing (no RuntimeClass pruned or published) until the config is fixed. */
  hold?: boolean;
  /** Plan again after this many ms even without an event (the next revert deadline). */
  wakeAfterMs?: number;
}

// ---------- label selectors ----------

export function matchesSelector(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const val = labels[e.key];
    const inValues = has && (e.values ?? []).includes(val!);
    if (e.operator === "In" && !inValues) return false;
    if (e.operator === "NotIn" && inValues) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/** maxUnavailable as a node count: an int, or a percentage of the selected nodes rounded down, at least 1. */
export function resolveMaxUnavailable(value: number | string | undefined, total: number): number {
  if (value === undefined) return 1;
  if (typeof value === "number") return Math.max(1, value);
  const pct = /^(\d+)%$/.exec(value);
  if (pct) return Math.max(1, Math.floor((Number(pct[1]) * total) / 100));
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

// ---------- node state ----------

const SAFE_TO_DROP_PHASES = new Set([undefined, "Probing", "Waiting"]);

/**
 * What this spec means on this node: spec.desired, or what the agent computes from
 * spec.fromConfig and its probe (docs/agent-contract.md). undefined until there is a probe.
 */
export const specDesired = (sn: SandboxNode): DesiredNode | undefined => (sn.status?.probe ? memo(sn.spec, sn.status.probe, specDesiredFor) : sn.spec.desired);

/**
 * Every pass computes desired (a sha256) for every node, twice; the cached objects are replaced,
 * never mutated, on each change, so results are kept per (spec, probe) object pair. Still pure.
 */
const memoized = new WeakMap<object, WeakMap<object, DesiredNode | undefined>>();
function memo<S extends object>(spec: S, probe: Probe, fn: (spec: S, probe: Probe) => DesiredNode | undefined): DesiredNode | undefined {
  let bySpec = memoized.get(probe);
  if (!bySpec) memoized.set(probe, (bySpec = new WeakMap()));
  if (!bySpec.has(spec)) bySpec.set(spec, fn(spec, probe));
  return bySpec.get(spec);
}

/** The agent is changing the node right now under this spec (counts against maxUnavailable). */
export function inProgress(sn: SandboxNode): boolean {
  const st = sn.status ?? {};
  if (!sn.spec.proceed) return false;
  if (sn.spec.action === "Revert") return !(st.phase === "Reverted" && !st.appliedHash);
  const unpinned = !sn.spec.desired && !!sn.spec.fromConfig;
  // First install from fromConfig, not probed yet: the agent applies as soon as it has probed.
  if (unpinned && !st.probe) return !st.appliedHash;
  const d = specDesired(sn);
  if (!d?.handlers.length) return false;
  // From fromConfig the agent applies only onto a node with nothing applied; a change waits for a pinned desired.
  if (unpinned && st.appliedHash && st.appliedHash !== d.hash) return false;
  return st.appliedHash !== d.hash && st.failedHash !== d.hash;
}

function agentCondition(sn: SandboxNode, type: string) {
  return sn.status?.conditions?.find((c) => c.type === type);
}

/** Labels for the handlers the agent verified that are still desired (none while the node changes). */
export function verifiedLabels(sn: SandboxNode, desired: DesiredNode | undefined): Record<string, string> {
  const st = sn.status;
  if (!st?.appliedHash || !desired) return {};
  const wanted = new Set(desired.handlers.map((h) => h.name));
  const out: Record<string, string> = {};
  for (const h of st.handlers ?? []) if (h.verified && wanted.has(h.name)) out[runtimeLabel(h.name)] = "true";
  return out;
}

export const isOurLabel = (key: string) => key.startsWith(RUNTIME_LABEL_PREFIX) || key === AGENT_NODE_LABEL || key === DRAIN_LABEL || key === CORDON_LABEL;

/** Our labels on a Node: the runtime labels and the agent label. */
export const ourLabels = (labels: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(labels).filter(([k]) => isOurLabel(k)));

const sameSpec = (a: SandboxNodeSpec, b: SandboxNodeSpec) =>
  a.action === b.action && a.proceed === b.proceed && a.configGeneration === b.configGeneration && (a.desired?.hash ?? "") === (b.desired?.hash ?? "") && canonical(a.fromConfig ?? null) === canonical(b.fromConfig ?? null);

interface Candidate {
  name: string;
  kind: "apply" | "revert";
  /** Already in progress under its current spec: keeps its slot. */
  continuing: boolean;
}


// ---------- the plan ----------

interface Ctx {
  config: SandboxConfig | null;
  snByName: Map<string, SandboxNode>;
  nodeByName: Map<string, NodeView>;
  podsByNode: Map<string, string[]>;
  podsListed: boolean;
  waitForPods: boolean;
  candidates: Candidate[];
  needPods: boolean;
  now: number;
  nodeTimeoutMs: number;
  /** Earliest revert deadline still ahead. */
  nextDeadline?: number;
  drain?: Record<string, DrainView>;
}

const drainOn = (ctx: Ctx) => drainEnabled(ctx.config);

/** A node granted a slot under spec.rollout.drain: true when policy-drain.ts holds it to drain first. */
function drainFirst(ctx: Ctx, plan: NodePlan, c: Candidate): boolean {
  const node = ctx.nodeByName.get(c.name);
  const sn = ctx.snByName.get(c.name);
  if (!drainOn(ctx) || !node || (sn && inProgress(sn))) return false;
  const step = drainStep({ config: ctx.config!, node, view: ctx.drain?.[c.name], kind: c.kind, now: ctx.now });
  if (!step) return false;
  plan.labels = { ...(c.kind === "apply" ? {} : plan.labels), ...step.labels };
  plan.evict = true;
  plan.summary = step.summary;
  if (step.deadline !== undefined) ctx.nextDeadline = Math.min(ctx.nextDeadline ?? step.deadline, step.deadline);
  return true;
}

const isoMs = (ms: number) => new Date(ms).toISOString();

/** Why a revert that outlived its deadline has not finished, from what the agent last wrote. */
function stuckSummary(sn: SandboxNode, timeoutS: number): NodeSummary {
  const name = sn.metadata.name;
  const st = sn.status ?? {};
  const letGo = `; once it cannot be fixed, let go of the node with sandboxctl uninstall --abandon-node ${name} (its runtime configuration stays there, docs/uninstall.md)`;
  // The Revert spec bumped the generation: an agent that answered it reported that generation back.
  if ((st.observedGeneration ?? 0) < (sn.metadata.generation ?? 0)) {
    const last = st.heartbeatTime ? `its last status is from ${st.heartbeatTime}` : "it never wrote a status";
    return { name, state: "Uninstalling", reason: "AgentNotResponding", message: `the agent has not answered the revert request for ${timeoutS}s (${last}): check its pod on the node${letGo}` };
  }
  if (st.phase === "Failed") {
    const deg = agentCondition(sn, "Degraded") ?? agentCondition(sn, "Ready");
    const why = deg ? `${deg.reason}${deg.message ? `: ${deg.message}` : ""}` : "phase Failed";
    return { name, state: "Uninstalling", reason: "RevertFailed", message: `the agent could not revert the node: ${why}${letGo}` };
  }
  return { name, state: "Uninstalling", reason: "RevertTimedOut", message: `the agent is still reverting (phase ${st.phase ?? "unknown"}) after ${timeoutS}s${letGo}` };
}

function summaryFor(sn: SandboxNode, desired: DesiredNode, config: SandboxConfig, probe: Probe): { summary: NodeSummary; settled: boolean } {
  const name = sn.metadata.name;
  const general = desired.handlers.find((h) => h.general)?.backend;
  if (desired.handlers.length === 0) return { settled: true, summary: { name, state: "Degraded", reason: "NoUsableBackend", message: noUsableMessage(config, probe) } };
  if (sn.status?.appliedHash === desired.hash) {
    // Drift (the agent found its runtime config overwritten and re-applies): still this hash, not Ready.
    const deg = agentCondition(sn, "Degraded");
    if (deg?.status === "True") return { settled: true, summary: { name, state: "Degraded", backend: general, reason: deg.reason, message: deg.message } };
    return { settled: true, summary: { name, state: "Ready", backend: general, reason: "Verified" } };
  }
  if (sn.status?.failedHash === desired.hash) {
    const deg = agentCondition(sn, "Degraded");
    return { settled: true, summary: { name, state: "Degraded", backend: general, reason: deg?.reason ?? "VerificationFailed", message: deg?.message ?? "the agent could not apply this configuration and rolled it back" } };
  }
  return { settled: false, summary: { name, state: "Pending", backend: general, reason: "WaitingForRollout", message: "waiting for a rollout slot (rollout.maxUnavailable)" } };
}

/**
 * A selected node: install, keep, or roll out a changed config. A new SandboxNode carries
 * fromConfig and the gate's proceed, so the agent computes desired itself (one write); desired is
 * written into the spec only for a change after the node applied something (it pins the hash the
 * gate let through), or when the spec already carries one.
 */
function planSelected(ctx: Ctx, name: string): NodePlan {
  const config = ctx.config!;
  const sn = ctx.snByName.get(name);
  const probe = sn?.status?.probe;
  const desired = probe ? memo(config.spec, probe, desiredNode) : undefined;
  const generation = config.metadata.generation;
  const pin = !!desired && (!!sn?.spec.desired || (!!sn?.status?.appliedHash && sn.status.appliedHash !== desired.hash));
  const base: SandboxNodeSpec = { action: "Apply", proceed: false, ...(generation !== undefined ? { configGeneration: generation } : {}), fromConfig: desiredInputs(config.spec), ...(pin ? { desired } : {}) };
  if (!sn || !desired) {
    const summary: NodeSummary = { name, state: "Pending", reason: sn ? "WaitingForProbe" : "Creating", message: sn ? "waiting for the node agent to report status.probe" : "creating the SandboxNode" };
    ctx.candidates.push({ name, kind: "apply", continuing: sn ? inProgress(sn) : false });
    return { name, spec: base, delete: false, labels: {}, summary, blockedBy: [] };
  }
  const { summary, settled } = summaryFor(sn, desired, config, probe!);
  // A settled node may keep proceed=true: there is nothing to do under this hash, and a new hash is always written with its own gate decision.
  const spec = settled && desired.handlers.length ? { ...base, proceed: sn.spec.proceed && specDesired(sn)?.hash === desired.hash } : base;
  if (!settled) ctx.candidates.push({ name, kind: "apply", continuing: inProgress(sn) });
  return { name, spec, delete: false, labels: verifiedLabels(sn, desired), summary, blockedBy: [] };
}

/** A node told to revert: it holds a rollout slot until done, or until spec.uninstall.nodeTimeoutSeconds passed. */
function planReverting(ctx: Ctx, sn: SandboxNode, plan: NodePlan): NodePlan {
  const name = sn.metadata.name;
  const recorded = sn.metadata.annotations?.[REVERT_SINCE_ANNOTATION];
  const since = Date.parse(recorded ?? "");
  const annotations = { [REVERT_SINCE_ANNOTATION]: Number.isNaN(since) ? isoMs(ctx.now) : recorded! };
  if (sn.spec.proceed && !Number.isNaN(since)) {
    const deadline = since + ctx.nodeTimeoutMs;
    if (ctx.now >= deadline) return { ...plan, spec: { ...sn.spec }, annotations, stuck: true, summary: stuckSummary(sn, Math.round(ctx.nodeTimeoutMs / 1000)) };
    ctx.nextDeadline = Math.min(ctx.nextDeadline ?? deadline, deadline);
  }
  ctx.candidates.push({ name, kind: "revert", continuing: inProgress(sn) });
  return { ...plan, spec: { ...sn.spec }, annotations, summary: { name, state: "Uninstalling", reason: "Reverting", message: "the agent is removing the sandbox runtimes" } };
}

/** A node we have a SandboxNode for that should not have one: it left the selector, the config is going, or the Node is gone. */
function planLeaving(ctx: Ctx, sn: SandboxNode): NodePlan {
  const name = sn.metadata.name;
  const node = ctx.nodeByName.get(name);
  const st = sn.status ?? {};
  const plan: NodePlan = { name, delete: false, labels: node ? {} : undefined, summary: { name, state: "Uninstalling" }, blockedBy: [] };
  if (!node) return { ...plan, delete: true, summary: { name, state: "Uninstalling", reason: "NodeGone", message: "the Node no longer exists" } };
  if (sn.metadata.annotations?.[ABANDON_ANNOTATION] === "true") {
    return { ...plan, delete: true, summary: { name, state: "Uninstalling", reason: "Abandoned", message: `an admin abandoned the node (${ABANDON_ANNOTATION}); what the agent applied stays on it` } };
  }
  // Nothing applied, and the agent could not have started (no desired, and no fromConfig it may act on).
  const neverApplied = !sn.spec.desired && !(sn.spec.fromConfig && sn.spec.proceed) && !st.appliedHash && SAFE_TO_DROP_PHASES.has(st.phase);
  if (neverApplied || (sn.spec.action === "Revert" && st.phase === "Reverted" && !st.appliedHash)) {
    return { ...plan, delete: true, summary: { name, state: "Uninstalling", reason: "Reverted", message: "reverted; removing the SandboxNode" } };
  }
  if (sn.spec.action === "Revert") return planReverting(ctx, sn, plan);
  // Still on Apply: pods using our RuntimeClasses hold the revert (unless whenPodsRun: Proceed).
  if (ctx.waitForPods && !ctx.podsListed) ctx.needPods = true;
  const pods = ctx.waitForPods ? [...(ctx.podsByNode.get(name) ?? [])].sort() : [];
  if (pods.length > 0) {
    return { ...plan, spec: { ...sn.spec, proceed: false }, blockedBy: pods, summary: { name, state: "Uninstalling", reason: "PodsRunning", message: `waiting for ${pods.length} pod(s) using sandbox RuntimeClasses: ${podList(pods)}` } };
  }
  ctx.candidates.push({ name, kind: "revert", continuing: inProgress(sn) });
  return { ...plan, spec: { ...sn.spec, proceed: false }, summary: { name, state: "Uninstalling", reason: "WaitingForRollout", message: "waiting for a rollout slot to revert (rollout.maxUnavailable)" } };
}

/** The gate: nodes already changing keep their slot; free slots go to reverts first, then applies, by name. */
function applyGate(plans: Map<string, NodePlan>, candidates: Candidate[], budget: number, holdReverts: boolean, ctx: Ctx): number {
  // A node our drain started on keeps its slot like one the agent is changing.
  if (drainOn(ctx)) for (const c of candidates) c.continuing ||= !!ctx.nodeByName.get(c.name)?.labels[DRAIN_LABEL];
  let used = candidates.filter((c) => c.continuing).length;
  const fresh = candidates.filter((c) => !c.continuing);
  const ordered = [...candidates.filter((c) => c.continuing), ...fresh.filter((c) => c.kind === "revert"), ...fresh.filter((c) => c.kind === "apply")];
  for (const c of ordered) {
    if (!c.continuing) {
      if (used >= budget || (holdReverts && c.kind === "revert")) continue;
      used++;
    }
    const plan = plans.get(c.name)!;
    if (drainFirst(ctx, plan, c)) continue;
    const keepDrain = drainOn(ctx) ? drainLabels(ctx.nodeByName.get(c.name)) : {};
    if (c.kind === "revert") {
      if (!plan.annotations) {
        plan.annotations = { [REVERT_SINCE_ANNOTATION]: isoMs(ctx.now) };
        const deadline = Date.parse(plan.annotations[REVERT_SINCE_ANNOTATION]!) + ctx.nodeTimeoutMs;
        ctx.nextDeadline = Math.min(ctx.nextDeadline ?? deadline, deadline);
      }
      plan.spec = { ...plan.spec!, action: "Revert", proceed: true };
      if (plan.labels) plan.labels = { ...plan.labels, ...keepDrain };
      plan.summary = { name: c.name, state: "Uninstalling", reason: "Reverting", message: "the agent is removing the sandbox runtimes" };
    } else {
      plan.spec = { ...plan.spec!, proceed: true };
      plan.labels = { ...keepDrain }; // a node being reconfigured takes no new sandboxed pods
      plan.summary = { ...plan.summary, state: "Progressing", reason: "Applying", message: "the agent is applying and verifying the configuration" };
    }
  }
  return used;
}

export function planRollout(input: RolloutInput): RolloutPlan {
  const { config } = input;
  const uninstalling = !config || !!config.metadata.deletionTimestamp;
  const selected = uninstalling ? [] : input.nodes.filter((n) => matchesSelector(config!.spec.nodeSelector ?? {}, n.labels)).map((n) => n.name).sort();
  const selectedSet = new Set(selected);
  const podsByNode = new Map<string, string[]>();
  for (const p of input.pods ?? []) podsByNode.set(p.nodeName, [...(podsByNode.get(p.nodeName) ?? []), `${p.namespace}/${p.name}`]);
  const ctx: Ctx = {
    config,
    snByName: new Map(input.sandboxNodes.map((s) => [s.metadata.name, s])),
    nodeByName: new Map(input.nodes.map((n) => [n.name, n])),
    podsByNode,
    podsListed: input.pods !== undefined,
    waitForPods: (config?.spec.uninstall?.whenPodsRun ?? "Wait") === "Wait",
    candidates: [],
    needPods: false,
    now: input.now ?? Date.now(),
    nodeTimeoutMs: nodeTimeoutMs(config),
    drain: input.drain,
  };
  const budget = resolveMaxUnavailable(config?.spec.rollout?.maxUnavailable, Math.max(selected.length, input.sandboxNodes.length));
  const plans = new Map<string, NodePlan>();
  for (const name of selected) plans.set(name, planSelected(ctx, name));
  const leaving = input.sandboxNodes.filter((sn) => !selectedSet.has(sn.metadata.name)).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const sn of leaving) plans.set(sn.metadata.name, planLeaving(ctx, sn));
  const used = applyGate(plans, ctx.candidates, budget, ctx.needPods, ctx);
  // Unchanged specs are not written again.
  for (const plan of plans.values()) {
    const sn = ctx.snByName.get(plan.name);
    if (sn && plan.spec && sameSpec(sn.spec, plan.spec) && canonicalDesired(sn.spec) === canonicalDesired(plan.spec) && sameAnnotations(sn, plan)) plan.spec = undefined;
  }
  addAgentLabel(plans);
  const release = input.nodes.filter((n) => !plans.has(n.name) && Object.keys(ourLabels(n.labels)).length > 0).map((n) => n.name).sort();
  const nodes = [...plans.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return { nodes, budget, inProgress: used, needPods: ctx.needPods, selected: selected.length, uninstalling, generation: config?.metadata.generation, configUid: config?.metadata.uid, release, ...wake(ctx) };
}

/** Just after the next revert deadline, if any. */
const wake = (ctx: Ctx) => (ctx.nextDeadline !== undefined ? { wakeAfterMs: Math.max(0, ctx.nextDeadline - ctx.now) + 50 } : {});

/** Our annotations on the SandboxNode are what the plan wants (a missing revert start is written). */
const sameAnnotations = (sn: SandboxNode, plan: NodePlan) => Object.entries(plan.annotations ?? {}).every(([k, v]) => sn.metadata.annotations?.[k] === v);

const canonicalDesired = (s: SandboxNodeSpec) => canonical(s.desired ?? null);

/**
 * The agent label goes on a node as soon as it is selected, in the same pass that creates its
 * SandboxNode (the agent DaemonSet runs only on nodes carrying it, DESIGN.md), and stays while the
 * SandboxNode exists; runtime labels join it later, in one more patch, once the agent verified.
 */
function addAgentLabel(plans: Map<string, NodePlan>): void {
  for (const plan of plans.values()) if (plan.labels && !plan.delete) plan.labels[AGENT_NODE_LABEL] = AGENT_NODE_LABEL_VALUE;
}

export function podList(pods: string[], max = 10): string {
  return pods.length <= max ? pods.join(", ") : `${pods.slice(0, max).join(", ")} and ${pods.length - max} more`;
}

function noUsableMessage(config: SandboxConfig, probe: Probe): string {
  const why = config.spec.runtimes.allowed.map((b) => {
    const p = probe.backends.find((x) => x.backend === b);
    if (!p) return `${b}: not probed`;
    return `${b}: ${p.installed ? "installed" : "not installed"}, not usable${p.message ? ` (${p.message})` : ""}`;
  });
  return `none of the allowed runtimes can run here: ${why.join("; ")}`;
}
