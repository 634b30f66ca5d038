// The MachineConfig install path as one level-based step: each call reads the world (pools,
// nodes, rendered configs, pods), does the next safe writes and says what it waits for.
import pino, { type Logger } from "pino";
import { DEFAULT_RUNTIMECLASS, type NodeSummary, type SandboxConfig } from "../api/index.js";
import type { AnyObject, KubeClient, KubeObject } from "../kube/client.js";
import { choosePool, type PlatformStatus } from "./policy-platform.js";
import {
  DEFAULT_POOL_ROLE,
  MANAGED_BY,
  MASTER_POOL,
  RenderError,
  SANDBOX_EXTENSION,
  contentFiles,
  machineConfigName,
  nodeRoleLabel,
  renderMachineConfig,
  renderMachineConfigPool,
  type MachineConfigContent,
} from "./render-machineconfig.js";
import { INSTALL_METHOD_LABEL, RUNTIME_LABEL_PREFIX, machineConfigBackends, machineConfigRuntimeClasses, runtimeLabel } from "./render-runtimeclasses.js";
import {
  MCO_CURRENT_CONFIG,
  MCO_DESIRED_CONFIG,
  renderedHasAnyPath,
  renderedHasContent,
  trackRollout,
  type NodeView,
  type PoolView,
  type RenderedInfo,
  type RenderedMachineConfig,
  type RolloutResult,
} from "./track-rollout.js";

/** A condition without the bookkeeping: the caller stamps lastTransitionTime and observedGeneration. */
export interface ConditionInput {
  type: "Ready" | "Progressing" | "Degraded";
  status: "True" | "False";
  reason: string;
  message: string;
}

export type OpenShiftPhase = "Installing" | "Installed" | "Uninstalling" | "Uninstalled" | "Blocked" | "Failed";

export interface OpenShiftReconcileOptions {
  /** The files the MachineConfig writes (the agent's CRI-O drop-in and Kata files). */
  content: MachineConfigContent;
  /** RuntimeClasses to publish; defaults to machineConfigRuntimeClasses(config) (the shared builder). Their names are the node runtime labels. */
  runtimeClasses?: AnyObject[];
  /** Role (and name) of our pool; default `sandboxed`. */
  poolRole?: string;
  /** Run the uninstall transaction; default: the SandboxConfig has a deletionTimestamp. */
  uninstall?: boolean;
  /** SandboxConfig.status.platform from detectPlatform, completed here with the pool. */
  platform?: PlatformStatus;
  requeueAfterMs?: number;
  log?: Logger;
}

export interface OpenShiftReconcileResult {
  phase: OpenShiftPhase;
  platform: PlatformStatus;
  nodes: NodeSummary[];
  counts: { selected: number; ready: number; progressing: number; degraded: number; uninstalling: number };
  conditions: ConditionInput[];
  runtimeClasses: string[];
  /** Pods (namespace/name on node) that hold the uninstall. */
  blockingPods: string[];
  /** Install: every selected node runs our MachineConfig. Uninstall: everything removed. */
  done: boolean;
  /** Set while waiting for the MCO or for pods: call again after this long. */
  requeueAfterMs?: number;
}

type Node = KubeObject;
type Pod = KubeObject & { spec?: { nodeName?: string; runtimeClassName?: string } };
const FIELD = "SandboxConfig cluster";
const silent = pino({ level: "silent" });

function counts(nodes: NodeSummary[], selected: number) {
  const c = { selected, ready: 0, progressing: 0, degraded: 0, uninstalling: 0 };
  for (const n of nodes) {
    if (n.state === "Ready") c.ready++;
    else if (n.state === "Progressing") c.progressing++;
    else if (n.state === "Degraded") c.degraded++;
    else if (n.state === "Uninstalling") c.uninstalling++;
  }
  return c;
}

/** The merge patch that makes a node carry exactly `want` of our labels (null removes); null when nothing changes. */
export function nodeLabelPatch(node: Node, want: Record<string, string>, ours: (key: string) => boolean): Record<string, string | null> | null {
  const have = node.metadata.labels ?? {};
  const patch: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) patch[k] = v;
  for (const k of Object.keys(have)) if (ours(k) && !(k in want)) patch[k] = null;
  return Object.keys(patch).length ? patch : null;
}

class Step {
  constructor(
    readonly client: KubeClient,
    readonly config: SandboxConfig,
    readonly opts: OpenShiftReconcileOptions,
    readonly log: Logger,
  ) {}

  get role() {
    return this.opts.poolRole ?? DEFAULT_POOL_ROLE;
  }

  classes(): AnyObject[] {
    return this.opts.runtimeClasses ?? (machineConfigRuntimeClasses(this.config) as unknown as AnyObject[]);
  }

  async setNodeLabels(node: Node, want: Record<string, string>, ours: (k: string) => boolean): Promise<void> {
    const patch = nodeLabelPatch(node, want, ours);
    if (!patch) return;
    this.log.info({ node: node.metadata.name, labels: patch }, "node labels");
    const updated = await this.client.mergePatch<Node>("Node", node.metadata.name, { metadata: { labels: patch } });
    node.metadata.labels = updated.metadata.labels;
  }

  /** Every rendered config the pool or the nodes name, read and checked for our files (exact bytes, or any of our paths). */
  async renderedInfo(pool: PoolView | null, nodes: NodeView[], files: Array<{ path: string; content: string }>, match: "exact" | "anyPath" = "exact"): Promise<RenderedInfo[]> {
    const names = new Set<string>();
    for (const n of nodes) for (const k of [MCO_CURRENT_CONFIG, MCO_DESIRED_CONFIG]) if (n.metadata.annotations?.[k]) names.add(n.metadata.annotations[k]!);
    for (const ref of [pool?.spec?.configuration, pool?.status?.configuration]) if (ref?.name) names.add(ref.name);
    const out: RenderedInfo[] = [];
    for (const name of [...names].sort()) {
      const rendered = await this.client.getOrNull<RenderedMachineConfig & KubeObject>("MachineConfig", name);
      if (!rendered) continue;
      out.push({ name, hasOurContent: match === "exact" ? renderedHasContent(rendered, files, SANDBOX_EXTENSION) : renderedHasAnyPath(rendered, files) });
    }
    return out;
  }

  async runningPods(nodeNames: Set<string>, classNames: Set<string>): Promise<string[]> {
    if (nodeNames.size === 0 || classNames.size === 0) return [];
    // A few nodes: one list per node by spec.nodeName (indexed), not every pod in the cluster.
    const running = "status.phase!=Succeeded,status.phase!=Failed";
    const items: Pod[] = [];
    if (nodeNames.size <= 50) for (const n of nodeNames) items.push(...(await this.client.list<Pod>("Pod", { fieldSelector: `spec.nodeName=${n},${running}` })).items);
    else items.push(...(await this.client.list<Pod>("Pod", { fieldSelector: running })).items);
    return items
      .filter((p) => p.spec?.runtimeClassName && classNames.has(p.spec.runtimeClassName) && p.spec.nodeName && nodeNames.has(p.spec.nodeName))
      .map((p) => `${p.metadata.namespace}/${p.metadata.name} on ${p.spec!.nodeName}`)
      .sort();
  }
}

function failed(platform: PlatformStatus, reason: string, message: string, selected: number): OpenShiftReconcileResult {
  return {
    phase: "Failed",
    platform: { ...platform, message },
    nodes: [],
    counts: counts([], selected),
    conditions: [
      { type: "Ready", status: "False", reason, message },
      { type: "Progressing", status: "False", reason, message: "nothing was changed; fix the SandboxConfig" },
      { type: "Degraded", status: "True", reason, message },
    ],
    runtimeClasses: [],
    blockingPods: [],
    done: false,
  };
}

/**
 * One reconcile step of the MachineConfig path for `selectedNodes` (the Nodes matching
 * spec.nodeSelector). Idempotent; safe to call again at any point, including after a crash.
 */
export async function reconcileOpenShift(client: KubeClient, config: SandboxConfig, selectedNodes: Node[], opts: OpenShiftReconcileOptions): Promise<OpenShiftReconcileResult> {
  const log = (opts.log ?? silent).child({ path: "MachineConfig" });
  const step = new Step(client, config, opts, log);
  const uninstall = opts.uninstall ?? Boolean(config.metadata.deletionTimestamp);
  return uninstall ? uninstallStep(step) : installStep(step, selectedNodes);
}

async function installStep(step: Step, selected: Node[]): Promise<OpenShiftReconcileResult> {
  const { client, config, opts, log } = step;
  const platform: PlatformStatus = { kind: "OpenShift", ...opts.platform, installMethod: "MachineConfig" };
  const choice = choosePool(selected.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels })), step.role);
  if (choice.error) return failed(platform, choice.error.reason, choice.error.message, selected.length);
  if (machineConfigBackends(config).length === 0) {
    const message = `${FIELD} spec.runtimes.allowed has no backend the MachineConfig path installs: the RHCOS ${SANDBOX_EXTENSION} extension provides kata-qemu only; allow kata-qemu or set spec.installMethod to DaemonSet`;
    return failed(platform, "NoUsableBackend", message, selected.length);
  }
  let mc, files;
  try {
    mc = renderMachineConfig(choice.pool, opts.content);
    files = contentFiles(opts.content);
  } catch (e) {
    if (!(e instanceof RenderError)) throw e;
    return failed(platform, "InvalidNodeConfiguration", `cannot render MachineConfig ${machineConfigName(choice.pool)}: ${e.message}`, selected.length);
  }
  platform.machineConfigPool = choice.pool;
  platform.message = [opts.platform?.message, choice.message].filter(Boolean).join("; ");
  const classes = step.classes();
  const classNames = classes.map((c) => c.metadata.name);
  const runtimeKeys = new Set(classNames.map(runtimeLabel));
  const isRuntimeLabel = (k: string) => k.startsWith(RUNTIME_LABEL_PREFIX);
  const roleLabel = nodeRoleLabel(step.role);

  // Pool before MachineConfig before node labels: a node then joins a pool that already renders
  // our MachineConfig, so it is drained and rebooted once, not twice.
  if (choice.custom) {
    const maxUnavailable = config.spec.rollout?.maxUnavailable;
    await client.apply(renderMachineConfigPool(step.role, maxUnavailable === undefined ? {} : { maxUnavailable }) as unknown as AnyObject);
  }
  await client.apply(mc as unknown as AnyObject);
  log.info({ machineConfig: mc.metadata.name, pool: choice.pool, hash: mc.metadata.annotations["sandboxing.dev/content-hash"] }, "MachineConfig applied");

  const selectedNames = new Set(selected.map((n) => n.metadata.name));
  const pool = await client.getOrNull<PoolView & KubeObject>("MachineConfigPool", choice.pool);
  // Nodes join only once the pool's target config includes our MachineConfig: joining earlier
  // would move them to a config without it first, an update (and possibly a reboot) for nothing.
  const poolRendered = Boolean(pool?.spec?.configuration?.source?.some((s) => s.name === mc.metadata.name));
  if (choice.custom && poolRendered) for (const n of selected) await step.setNodeLabels(n, { [roleLabel]: "" }, (k) => k === roleLabel);
  const blockingPods = await releaseUnselected(step, selectedNames, [...runtimeKeys], choice.custom ? roleLabel : undefined, new Set(classNames));

  const rendered = await step.renderedInfo(pool, selected as NodeView[], files);
  const rollout = trackRollout({
    pool,
    nodes: selected as NodeView[],
    machineConfig: mc.metadata.name,
    rendered,
    inPool: (n) => !choice.custom || n.metadata.labels?.[roleLabel] !== undefined,
    mode: "install",
  });

  // A node gets the runtime labels (and so sandboxed pods) only once the MCO reports it runs our MachineConfig.
  const byName = new Map(selected.map((n) => [n.metadata.name, n]));
  for (const r of rollout.nodes) {
    const node = byName.get(r.name)!;
    const want = r.state === "Ready" ? Object.fromEntries([...runtimeKeys].map((k) => [k, "true"])) : {};
    await step.setNodeLabels(node, want, (k) => isRuntimeLabel(k));
  }
  for (const rc of classes) await client.apply(rc);
  await removeStaleRuntimeClasses(step, new Set(classNames));

  return installResult(step, platform, rollout, selected.length, classNames, blockingPods);
}

/**
 * Nodes no longer selected: runtime labels off first; the role label (and so the pool and its
 * MachineConfig) only once no pod with our RuntimeClasses runs there. Returns the pods that wait.
 */
async function releaseUnselected(step: Step, selected: Set<string>, runtimeKeys: string[], roleLabel: string | undefined, classNames: Set<string>): Promise<string[]> {
  const found = new Map<string, Node>();
  // Label selectors keep this cheap on large clusters: only nodes carrying one of our labels are read.
  for (const key of [...runtimeKeys, ...(roleLabel ? [roleLabel] : [])]) {
    for (const n of (await step.client.list<Node>("Node", { labelSelector: key })).items) if (!selected.has(n.metadata.name)) found.set(n.metadata.name, n);
  }
  if (found.size === 0) return [];
  for (const n of found.values()) await step.setNodeLabels(n, {}, (k) => k.startsWith(RUNTIME_LABEL_PREFIX));
  if (!roleLabel) return [];
  const pods = step.config.spec.uninstall?.whenPodsRun === "Proceed" ? [] : await step.runningPods(new Set(found.keys()), classNames);
  for (const n of found.values()) {
    if (pods.some((p) => p.endsWith(` on ${n.metadata.name}`))) continue;
    await step.setNodeLabels(n, {}, (k) => k === roleLabel);
  }
  return pods;
}

async function removeStaleRuntimeClasses(step: Step, keep: Set<string>): Promise<string[]> {
  const published = await step.client.list<KubeObject>("RuntimeClass", { labelSelector: `${INSTALL_METHOD_LABEL}=MachineConfig` });
  const removed: string[] = [];
  for (const rc of published.items) {
    if (keep.has(rc.metadata.name)) continue;
    await step.client.delete("RuntimeClass", rc.metadata.name);
    step.log.info({ runtimeClass: rc.metadata.name }, "RuntimeClass removed");
    removed.push(rc.metadata.name);
  }
  return removed;
}

function installResult(step: Step, platform: PlatformStatus, rollout: RolloutResult, selected: number, classNames: string[], blockingPods: string[]): OpenShiftReconcileResult {
  const nodes: NodeSummary[] = rollout.nodes.map((n) => ({ name: n.name, state: n.state, backend: "kata-qemu", reason: n.reason, message: n.message }));
  const c = counts(nodes, selected);
  const degraded = rollout.nodes.filter((n) => n.state === "Degraded");
  const pool = rollout.pool;
  const paused = pool?.paused ? " (paused by an admin: the MCO updates no node until spec.paused is false)" : "";
  const poolText = pool ? `pool ${pool.name}: ${pool.updatedMachineCount}/${pool.machineCount} updated, ${pool.degradedMachineCount} degraded${paused}` : `pool ${platform.machineConfigPool} has no status yet`;
  const conditions: ConditionInput[] = [];
  const done = rollout.complete && blockingPods.length === 0;
  if (selected === 0) conditions.push({ type: "Ready", status: "False", reason: "NoNodesSelected", message: `${FIELD} spec.nodeSelector matches no node` });
  else if (done) conditions.push({ type: "Ready", status: "True", reason: "AllNodesReady", message: `${c.ready}/${selected} nodes run ${machineConfigName(platform.machineConfigPool!)}` });
  else conditions.push({ type: "Ready", status: "False", reason: degraded.length ? "NodesDegraded" : "RolloutInProgress", message: `${c.ready}/${selected} nodes ready; ${poolText}` });
  conditions.push(
    done || selected === 0
      ? { type: "Progressing", status: "False", reason: "RolloutComplete", message: poolText }
      : { type: "Progressing", status: "True", reason: blockingPods.length ? "NodeRemovalBlockedByPods" : "MachineConfigRollout", message: blockingPods.length ? `nodes leaving the selection still run sandboxed pods: ${blockingPods.join(", ")}` : `${c.progressing} updating, ${c.ready} ready of ${selected}; ${poolText}` },
  );
  if (degraded.length) conditions.push({ type: "Degraded", status: "True", reason: "MachineConfigDegraded", message: degraded.map((n) => `${n.name}: ${n.message}`).join("; ") });
  else if (pool?.degraded) conditions.push({ type: "Degraded", status: "True", reason: "MachineConfigPoolDegraded", message: `pool ${pool.name} ${pool.degraded.reason}: ${pool.degraded.message}` });
  else conditions.push({ type: "Degraded", status: "False", reason: "AsExpected", message: "" });
  step.log.info({ ready: c.ready, progressing: c.progressing, degraded: c.degraded, selected, done }, "MachineConfig rollout");
  return {
    phase: done ? "Installed" : "Installing",
    platform,
    nodes,
    counts: c,
    conditions,
    runtimeClasses: classNames,
    blockingPods,
    done,
    requeueAfterMs: done ? undefined : (step.opts.requeueAfterMs ?? 15_000),
  };
}

interface UninstallScope {
  ownPool: (PoolView & KubeObject) | null;
  masterPool: (PoolView & KubeObject) | null;
  ourMachineConfigs: KubeObject[];
  allNodes: Node[];
  poolMembers: Node[];
  masters: Node[];
  /** Our master MachineConfig exists or is still rendered into the master pool. */
  masterMode: boolean;
}

const listsSource = (pool: PoolView | null, name: string) =>
  [pool?.spec?.configuration, pool?.status?.configuration].some((ref) => ref?.source?.some((s) => s.name === name));

async function uninstallScope(step: Step): Promise<UninstallScope> {
  const { client } = step;
  const roleLabel = nodeRoleLabel(step.role);
  const customPool = await client.getOrNull<PoolView & KubeObject>("MachineConfigPool", step.role);
  const ownPool = customPool?.metadata.labels?.["app.kubernetes.io/managed-by"] === MANAGED_BY["app.kubernetes.io/managed-by"] ? customPool : null;
  const masterPool = await client.getOrNull<PoolView & KubeObject>("MachineConfigPool", MASTER_POOL);
  const ourMachineConfigs: KubeObject[] = [];
  for (const name of [machineConfigName(step.role), machineConfigName(MASTER_POOL)]) {
    const mc = await client.getOrNull<KubeObject>("MachineConfig", name);
    if (mc) ourMachineConfigs.push(mc);
  }
  const allNodes = (await client.list<Node>("Node")).items;
  const masterName = machineConfigName(MASTER_POOL);
  return {
    ownPool,
    masterPool,
    ourMachineConfigs,
    allNodes,
    poolMembers: allNodes.filter((n) => n.metadata.labels?.[roleLabel] !== undefined),
    masters: allNodes.filter((n) => n.metadata.labels?.[nodeRoleLabel(MASTER_POOL)] !== undefined),
    masterMode: ourMachineConfigs.some((mc) => mc.metadata.name === masterName) || listsSource(masterPool, masterName),
  };
}

/** Per-node roll-back state in every pool that had our MachineConfig; complete when none runs it any more. */
async function rollbackState(step: Step, scope: UninstallScope): Promise<{ complete: boolean; nodes: NodeSummary[] }> {
  const files = safeFiles(step.opts);
  const pools: Array<[PoolView | null, Node[], string]> = [];
  if (scope.ownPool) pools.push([await step.client.getOrNull<PoolView & KubeObject>("MachineConfigPool", step.role), scope.poolMembers, machineConfigName(step.role)]);
  if (scope.masterMode) pools.push([await step.client.getOrNull<PoolView & KubeObject>("MachineConfigPool", MASTER_POOL), scope.masters, machineConfigName(MASTER_POOL)]);
  const nodes: NodeSummary[] = [];
  let complete = true;
  for (const [pool, members, name] of pools) {
    // Any of our paths counts here: a node running an older version of our files is not rolled back either.
    const rendered = files ? await step.renderedInfo(pool, members as NodeView[], files, "anyPath") : [];
    const r = trackRollout({ pool, nodes: members as NodeView[], machineConfig: name, rendered, inPool: () => true, mode: "uninstall" });
    complete &&= r.complete;
    nodes.push(...r.nodes.map((n) => ({ name: n.name, state: n.state, reason: n.reason, message: n.message })));
  }
  return { complete, nodes };
}

/** Uninstall, the reverse of install: runtime labels, (wait for pods), MachineConfig, pool roll-back, role labels, pool, RuntimeClasses. */
async function uninstallStep(step: Step): Promise<OpenShiftReconcileResult> {
  const { client, config, opts, log } = step;
  const platform: PlatformStatus = { kind: "OpenShift", ...opts.platform, installMethod: "MachineConfig" };
  const classNames = new Set([...step.classes().map((c) => c.metadata.name), config.spec.runtimeClassName ?? DEFAULT_RUNTIMECLASS]);
  const roleLabel = nodeRoleLabel(step.role);
  const scope = await uninstallScope(step);
  // Nodes that run (or may still run) our MachineConfig.
  const affected = new Set([...scope.poolMembers, ...(scope.masterMode ? scope.masters : [])].map((n) => n.metadata.name));

  // 1. No new sandboxed pod lands anywhere: every runtime label comes off first.
  for (const n of scope.allNodes) await step.setNodeLabels(n, {}, (k) => k.startsWith(RUNTIME_LABEL_PREFIX));

  // 2. Nothing more changes while sandboxed pods still run on a node that is to be rolled back.
  const pods = await step.runningPods(affected, classNames);
  if (pods.length && config.spec.uninstall?.whenPodsRun !== "Proceed") {
    const message = `uninstall waits for pods using RuntimeClasses ${[...classNames].sort().join(", ")}: ${pods.join(", ")}; delete them or set ${FIELD} spec.uninstall.whenPodsRun to Proceed`;
    log.info({ pods: pods.length }, "uninstall blocked by sandboxed pods");
    return uninstallResult(step, platform, [], "Blocked", message, pods, "UninstallBlockedByPods");
  }

  // 3. MachineConfig removed: the MCO re-renders the pool without it and rolls the nodes back (drain + reboot).
  for (const mc of scope.ourMachineConfigs) {
    if (await client.delete("MachineConfig", mc.metadata.name)) log.info({ machineConfig: mc.metadata.name }, "MachineConfig deleted");
  }

  // 4. Wait until every affected node runs a rendered config without ours.
  const rollback = await rollbackState(step, scope);
  if (!rollback.complete) return uninstallResult(step, platform, rollback.nodes, "Uninstalling", "waiting for the Machine Config Operator to roll the nodes back", []);

  // 5. Nodes leave our pool (back to worker: same rendered content), then the empty pool goes.
  for (const n of scope.poolMembers) await step.setNodeLabels(n, {}, (k) => k === roleLabel);
  if (scope.ownPool) {
    const now = await client.getOrNull<PoolView & KubeObject>("MachineConfigPool", step.role);
    const left = now?.status?.machineCount ?? 0;
    if (now && left > 0) return uninstallResult(step, platform, rollback.nodes, "Uninstalling", `waiting for ${left} node(s) to leave pool ${step.role}`, []);
    if (now && (await client.delete("MachineConfigPool", step.role))) log.info({ pool: step.role }, "MachineConfigPool deleted");
  }

  // 6. RuntimeClasses last: until here a pod could still name one.
  await removeStaleRuntimeClasses(step, new Set());
  return uninstallResult(step, platform, [], "Uninstalled", "everything the MachineConfig path installed is removed", []);
}

function safeFiles(opts: OpenShiftReconcileOptions): Array<{ path: string; content: string }> | null {
  try {
    return contentFiles(opts.content);
  } catch {
    return null;
  }
}

function uninstallResult(step: Step, platform: PlatformStatus, nodes: NodeSummary[], phase: OpenShiftPhase, message: string, blockingPods: string[], reason = "Uninstalling"): OpenShiftReconcileResult {
  const done = phase === "Uninstalled";
  step.log.info({ phase, nodes: nodes.length }, "MachineConfig uninstall");
  return {
    phase,
    platform,
    nodes,
    counts: counts(nodes, 0),
    conditions: [
      { type: "Ready", status: "False", reason: done ? "Uninstalled" : reason, message },
      { type: "Progressing", status: done ? "False" : "True", reason: done ? "Uninstalled" : reason, message },
      { type: "Degraded", status: nodes.some((n) => n.state === "Degraded") ? "True" : "False", reason: nodes.some((n) => n.state === "Degraded") ? "MachineConfigDegraded" : "AsExpected", message: nodes.filter((n) => n.state === "Degraded").map((n) => `${n.name}: ${n.message}`).join("; ") },
    ],
    runtimeClasses: [],
    blockingPods,
    done,
    requeueAfterMs: done ? undefined : (step.opts.requeueAfterMs ?? 15_000),
  };
}
