// The Kubernetes installer: one SandboxNode per selected Node for that node's agent (DaemonSet),
// runtime labels on the Node, and the revert path. Applies the pure plan from policy-rollout.ts.
import { AGENT_NODE_LABEL, API_VERSION, SANDBOXNODE_KIND, type SandboxConfig, type SandboxNode, type SandboxNodeSpec } from "../api/index.js";
import type { ApiError, KubeClient, KubeObject } from "../kube/client.js";
import type { Informer } from "../kube/informer.js";
import { logger } from "../telemetry/logger.js";
import type { InstallerResult, NodeInstaller } from "./installer.js";
import { CONFIG_LABEL, desiredRuntimeClasses, isOurs, runtimeClassNames, verifyRuntimeClasses, type RuntimeClassObject } from "./desired-runtimeclasses.js";
import { CORDON_LABEL, DRAIN_LABEL, ourLabels, planRollout, type NodePlan, type PodView, type RolloutPlan } from "./policy-rollout.js";
import { Drainer } from "./drain.js";
import { isRefusal, REFUSAL_RETRY_MS, type Refusals } from "./refusals.js";

export interface NodeObject extends KubeObject {
  spec?: Record<string, unknown>;
}

interface PodObject extends KubeObject {
  spec: { nodeName?: string; runtimeClassName?: string };
  status?: { phase?: string };
}

export interface DaemonSetInstallerOptions {
  client: KubeClient;
  nodes: Informer<NodeObject>;
  sandboxNodes: Informer<SandboxNode>;
  runtimeClasses: Informer<KubeObject>;
  /** How often to look again while pods hold an uninstall (default 5 s). */
  podRecheckMs?: number;
  /** Parallel writes per pass (default 16). */
  writeConcurrency?: number;
  /** Where refused Node label patches are recorded for status (NodeLabelRefused). */
  refusals?: Refusals;
}

/** Runs fn over items with at most `limit` in flight; collects every error instead of stopping at the first. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<Error[]> {
  const errors: Error[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e as Error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return errors;
}

/** Above this many SandboxNodes, one cluster-wide pod list costs less than one list per node. */
const PER_NODE_POD_LISTS = 50;

export class DaemonSetInstaller implements NodeInstaller {
  readonly platform = { kind: "Kubernetes", installMethod: "DaemonSet" } as const;
  last: RolloutPlan | undefined;
  private readonly log = logger("installer-daemonset");
  /** Node label patches the apiserver refused in the current pass (passes never overlap: one queue key). */
  private readonly refusedNow = new Map<string, ApiError>();
  private readonly drainer: Drainer;

  constructor(private readonly o: DaemonSetInstallerOptions) {
    this.drainer = new Drainer(o.client);
  }

  /** Every class users pick, plus one verification class each for the agents' Pods. */
  runtimeClasses(config: SandboxConfig): RuntimeClassObject[] {
    const classes = desiredRuntimeClasses(config.spec);
    return [...classes, ...verifyRuntimeClasses(classes)];
  }

  /**
   * Pods (not finished, bound to a node) that use one of our RuntimeClasses. Such a pod runs only
   * where our handler is, on a node with a SandboxNode: up to PER_NODE_POD_LISTS such nodes, one
   * list per node by spec.nodeName (the apiserver indexes pods by node) instead of every pod in the
   * cluster each time an uninstall waits.
   */
  private async sandboxedPods(config: SandboxConfig | null): Promise<PodView[]> {
    const classes = new Set(config ? runtimeClassNames(config.spec) : []);
    for (const rc of this.o.runtimeClasses.list()) if (isOurs(rc)) classes.add(rc.metadata.name);
    const running = "status.phase!=Succeeded,status.phase!=Failed";
    const nodes = this.o.sandboxNodes.list().map((n) => n.metadata.name);
    const items: PodObject[] = [];
    if (nodes.length <= PER_NODE_POD_LISTS) {
      const errors = await forEachLimit(nodes, this.o.writeConcurrency ?? 16, async (n) => {
        items.push(...(await this.o.client.list<PodObject>("Pod", { fieldSelector: `spec.nodeName=${n},${running}` })).items);
      });
      if (errors.length) throw new AggregateError(errors, `listing pods on ${errors.length} node(s) failed: ${errors[0]!.message}`);
    } else items.push(...(await this.o.client.list<PodObject>("Pod", { fieldSelector: running })).items);
    return items
      .filter((p) => p.spec.nodeName && p.spec.runtimeClassName && classes.has(p.spec.runtimeClassName))
      .map((p) => ({ namespace: p.metadata.namespace ?? "", name: p.metadata.name, nodeName: p.spec.nodeName!, runtimeClassName: p.spec.runtimeClassName! }));
  }

  async reconcile(config: SandboxConfig | null): Promise<InstallerResult> {
    const nodes = this.o.nodes.list().map((n) => ({ name: n.metadata.name, uid: n.metadata.uid, labels: n.metadata.labels ?? {}, unschedulable: n.spec?.unschedulable === true }));
    const draining = nodes.filter((n) => n.labels[DRAIN_LABEL] !== undefined).map((n) => n.name);
    const input = { config, nodes, sandboxNodes: this.o.sandboxNodes.list(), now: Date.now(), drain: await this.drainer.views(draining) };
    let plan = planRollout(input);
    if (plan.needPods) plan = planRollout({ ...input, pods: await this.sandboxedPods(config) });
    // Every pass tries each label patch it needs again: what it finds refused is this pass's truth.
    this.refusedNow.clear();
    const errors = await forEachLimit(plan.nodes, this.o.writeConcurrency ?? 16, (p) => this.applyNode(p));
    errors.push(...(await forEachLimit(plan.release, this.o.writeConcurrency ?? 16, (name) => this.setLabels(name, {}))));
    // After the cordon above: evict what runs there (kubectl drain's order).
    const evicting = plan.nodes.filter((p) => p.evict).map((p) => p.name);
    errors.push(...(await forEachLimit(evicting, this.o.writeConcurrency ?? 16, (name) => this.drainer.evict(name))));
    this.last = plan;
    this.o.refusals?.replace("Node", this.refusedNow);
    if (errors.length) throw new AggregateError(errors, `${errors.length} node write(s) failed: ${errors.slice(0, 3).map((e) => e.message).join("; ")}`);
    const blocked = plan.nodes.some((n) => n.blockedBy.length > 0 || n.evict);
    const waits = [...(blocked ? [this.o.podRecheckMs ?? 5000] : []), ...(plan.wakeAfterMs !== undefined ? [plan.wakeAfterMs] : []), ...(this.refusedNow.size > 0 ? [REFUSAL_RETRY_MS] : [])];
    return { plan, ...(waits.length ? { requeueAfter: Math.min(...waits) } : {}) };
  }

  /** Makes the Node carry exactly `want` of our labels (runtime labels, agent label); others untouched. */
  private async setLabels(name: string, want: Record<string, string>, keep: (key: string) => boolean = () => false): Promise<void> {
    const node = this.o.nodes.get(name);
    if (!node) return;
    const current = ourLabels(node.metadata.labels ?? {});
    const patch: Record<string, string | null> = {};
    for (const k of Object.keys(current)) if (!(k in want) && !keep(k)) patch[k] = null;
    for (const [k, v] of Object.entries(want)) if (current[k] !== v) patch[k] = v;
    if (!Object.keys(patch).length) return;
    // Our cordon (spec.unschedulable) comes and goes with CORDON_LABEL, in the same patch; an admin's cordon has no such label.
    const cordon = patch[CORDON_LABEL] === undefined ? {} : { spec: { unschedulable: patch[CORDON_LABEL] === null ? null : true } };
    // A merge patch, not apply: a label must go even when another manager once set it.
    let updated: NodeObject;
    try {
      updated = await this.o.client.mergePatch<NodeObject>("Node", name, { metadata: { labels: patch }, ...cordon });
    } catch (e) {
      if (!isRefusal(e) || !this.o.refusals) throw e;
      // Reported in status (NodeLabelRefused) and tried again next pass; the other nodes go on.
      this.refusedNow.set(name, e);
      this.log.warn({ node: name, labels: patch, err: e.message }, "node label patch refused by the apiserver (NodeLabelRefused)");
      return;
    }
    this.o.nodes.upsert(updated);
    this.log.info({ node: name, labels: patch, ...(cordon.spec ? { unschedulable: cordon.spec.unschedulable ?? false } : {}) }, "node labels changed");
  }

  /**
   * Labels first (a node loses its runtime labels before it changes), then the SandboxNode. On a
   * delete the agent label stays until the SandboxNode is gone: the agent must run to revert.
   */
  private async applyNode(p: NodePlan): Promise<void> {
    const node = this.o.nodes.get(p.name);
    if (node && p.labels) await this.setLabels(p.name, p.labels, (k) => p.delete && k === AGENT_NODE_LABEL);
    const sn = this.o.sandboxNodes.get(p.name);
    if (p.delete) {
      if (sn) {
        await this.o.client.delete(SANDBOXNODE_KIND, p.name, undefined, { preconditionUid: sn.metadata.uid });
        this.o.sandboxNodes.forget(p.name);
        this.log[p.summary.reason === "Abandoned" ? "warn" : "info"]({ node: p.name, reason: p.summary.reason }, "SandboxNode deleted");
      }
      if (node && p.labels) await this.setLabels(p.name, p.labels);
      return;
    }
    if (!p.spec || !node) return;
    const applied = await this.o.client.apply<SandboxNode>(this.sandboxNode(p.name, node, p.spec, p.annotations));
    this.o.sandboxNodes.upsert(applied);
    this.log.info({ node: p.name, action: p.spec.action, proceed: p.spec.proceed, hash: p.spec.desired?.hash ?? "fromConfig", state: p.summary.state, reason: p.summary.reason }, sn ? "SandboxNode spec updated" : "SandboxNode created");
  }

  private sandboxNode(name: string, node: NodeObject, spec: SandboxNodeSpec, annotations?: Record<string, string>): KubeObject & { spec: SandboxNodeSpec } {
    return {
      apiVersion: API_VERSION,
      kind: SANDBOXNODE_KIND,
      metadata: {
        name,
        labels: { [CONFIG_LABEL]: "cluster" },
        ...(annotations ? { annotations } : {}),
        ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: node.metadata.uid!, blockOwnerDeletion: false }],
      },
      spec,
    };
  }

  /** No SandboxNode of ours and no Node with the agent label (runtime labels go before either). */
  async nodesClean(): Promise<boolean> {
    const left = await this.o.client.list<SandboxNode>(SANDBOXNODE_KIND, { labelSelector: `${CONFIG_LABEL}=cluster`, limit: 1 });
    if (left.items.length > 0) return false;
    const labelled = await this.o.client.list<NodeObject>("Node", { labelSelector: AGENT_NODE_LABEL, limit: 1 });
    return labelled.items.length === 0;
  }
}
