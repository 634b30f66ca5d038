// Drain for spec.rollout.drain: lists the pods a drain must move off a node and evicts them through
// the Eviction subresource, so the apiserver enforces PodDisruptionBudgets; remembers refusals.
import { ApiError, type KubeClient, type KubeObject } from "../kube/client.js";
import { logger } from "../telemetry/logger.js";
import type { DrainView } from "./policy-drain.js";

interface PodObject extends KubeObject {
  spec: { nodeName?: string };
  status?: { phase?: string };
}

const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";

/**
 * Pods a drain evicts, as kubectl drain does: not finished, not a static (mirror) pod the kubelet
 * owns, and not DaemonSet-owned (the DaemonSet ignores unschedulable and would put it right back;
 * our agent is one of these).
 */
export function evictable(p: PodObject): boolean {
  if (p.status?.phase === "Succeeded" || p.status?.phase === "Failed") return false;
  if (p.metadata.annotations?.[MIRROR_ANNOTATION] !== undefined) return false;
  return !(p.metadata.ownerReferences ?? []).some((o) => o.kind === "DaemonSet");
}

const key = (p: PodObject) => `${p.metadata.namespace}/${p.metadata.name}`;

/** Why the apiserver refused an eviction: its message and the causes (the PodDisruptionBudget by name). */
function refusal(pod: string, e: ApiError): string {
  const causes = ((e.details as { causes?: Array<{ message?: string }> } | undefined)?.causes ?? []).map((c) => c.message).filter(Boolean);
  return `eviction of pod ${pod} refused: ${e.message.replace(/^\S+ \S+: /, "")}${causes.length ? ` (${causes.join("; ")})` : ""}`;
}

export class Drainer {
  private readonly log = logger("drain");
  /** The last refusal per node, shown in its status until an eviction there succeeds. */
  private readonly refused = new Map<string, string>();

  constructor(private readonly client: KubeClient) {}

  private async podsOn(node: string): Promise<PodObject[]> {
    return (await this.client.list<PodObject>("Pod", { fieldSelector: `spec.nodeName=${node}` })).items.filter(evictable);
  }

  /** What is left to move off each node (terminating pods included: they still run). */
  async views(nodes: string[]): Promise<Record<string, DrainView>> {
    const out: Record<string, DrainView> = {};
    for (const n of nodes) {
      const refused = this.refused.get(n);
      out[n] = { pods: (await this.podsOn(n)).map(key).sort(), ...(refused ? { refused } : {}) };
    }
    for (const n of this.refused.keys()) if (!nodes.includes(n)) this.refused.delete(n);
    return out;
  }

  /** One eviction per pod still running on the (cordoned) node; a 429 is a PodDisruptionBudget saying no for now. */
  async evict(node: string): Promise<void> {
    const refusals: string[] = [];
    for (const p of await this.podsOn(node)) {
      if (p.metadata.deletionTimestamp) continue;
      const { name, namespace } = p.metadata;
      const path = this.client.path({ group: "", version: "v1", plural: "pods", namespaced: true }, name, namespace, "eviction");
      try {
        await this.client.call("POST", path, { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } });
        this.log.info({ node, pod: key(p) }, "pod evicted");
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) continue;
        if (!(e instanceof ApiError) || e.status !== 429) throw new Error(`evicting pod ${key(p)} from node ${node}: ${(e as Error).message}`, { cause: e });
        refusals.push(refusal(key(p), e));
      }
    }
    if (refusals.length) {
      this.refused.set(node, refusals.join("; "));
      this.log.warn({ node, refused: refusals[0] }, "eviction refused");
    } else this.refused.delete(node);
  }
}
