// Plays the Machine Config Operator against the real test apiserver: renders pools from the
// MachineConfigs their selectors match, moves nodes Working -> Done, and writes pool status.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";

const MC_ROLE = "machineconfiguration.openshift.io/role";
const A = {
  current: "machineconfiguration.openshift.io/currentConfig",
  desired: "machineconfiguration.openshift.io/desiredConfig",
  state: "machineconfiguration.openshift.io/state",
  reason: "machineconfiguration.openshift.io/reason",
};

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

interface Pool extends KubeObject {
  spec: { machineConfigSelector?: Selector; nodeSelector?: Selector; configuration?: { name: string; source: Array<{ apiVersion: string; kind: string; name: string }> }; paused?: boolean };
  status?: Record<string, unknown>;
}

interface MachineConfig extends KubeObject {
  spec?: { config?: { ignition?: { version: string }; storage?: { files?: Array<{ path: string }> } }; extensions?: string[] };
}

type Node = KubeObject;

export function matches(sel: Selector | undefined, labels: Record<string, string> = {}): boolean {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = k(labels, e.key);
    if (e.operator === "In" && !(has && e.values?.includes(labels[e.key]!))) return false;
    if (e.operator === "NotIn" && has && e.values?.includes(labels[e.key]!)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}
const k = (labels: Record<string, string>, key: string) => Object.prototype.hasOwnProperty.call(labels, key);

/** The MCO's stock pools and base configs, as on a fresh OpenShift 4.x cluster. */
export function stockObjects(): AnyObject[] {
  const pool = (role: string): AnyObject => ({
    apiVersion: "machineconfiguration.openshift.io/v1",
    kind: "MachineConfigPool",
    metadata: { name: role, labels: { [`pools.operator.machineconfiguration.openshift.io/${role}`]: "" } },
    spec: { machineConfigSelector: { matchLabels: { [MC_ROLE]: role } }, nodeSelector: { matchLabels: { [`node-role.kubernetes.io/${role}`]: "" } }, paused: false },
  });
  const base = (role: string, n: string, path: string): AnyObject => ({
    apiVersion: "machineconfiguration.openshift.io/v1",
    kind: "MachineConfig",
    metadata: { name: `${n}-${role}`, labels: { [MC_ROLE]: role } },
    spec: { config: { ignition: { version: "3.2.0" }, storage: { files: [{ path, mode: 420, overwrite: true, contents: { source: `data:,${role}` } }] } } },
  });
  return [pool("worker"), pool("master"), base("worker", "00", "/etc/stock-worker"), base("worker", "01", "/etc/kubelet-worker"), base("master", "00", "/etc/stock-master")];
}

export class McoSimulator {
  private constructor(readonly client: KubeClient) {}

  /** Its own client and field manager, as the real MCO has. */
  static async create(kc: KubeConfig): Promise<McoSimulator> {
    return new McoSimulator(await KubeClient.fromKubeConfig(kc, { fieldManager: "machine-config-operator" }));
  }

  close(): void {
    this.client.close();
  }

  async installStock(): Promise<void> {
    for (const o of stockObjects()) await this.client.apply(o);
  }

  async pools(): Promise<Pool[]> {
    return (await this.client.list<Pool>("MachineConfigPool")).items;
  }

  /** The pool a node belongs to: a custom pool wins over worker; masters stay in master. */
  poolOf(node: Node, pools: Pool[]): Pool | undefined {
    const labels = node.metadata.labels ?? {};
    const hits = pools.filter((p) => matches(p.spec.nodeSelector, labels));
    if (hits.some((p) => p.metadata.name === "master")) return hits.find((p) => p.metadata.name === "master");
    return hits.find((p) => p.metadata.name !== "worker") ?? hits.find((p) => p.metadata.name === "worker");
  }

  /** Renders every pool: merges its MachineConfigs into rendered-<pool>-<hash> and points spec.configuration at it. */
  async render(): Promise<Map<string, string>> {
    const mcs = (await this.client.list<MachineConfig>("MachineConfig")).items.filter((m) => !m.metadata.name.startsWith("rendered-"));
    const out = new Map<string, string>();
    for (const pool of await this.pools()) {
      const sources = mcs.filter((m) => matches(pool.spec.machineConfigSelector, m.metadata.labels)).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
      const files = new Map<string, unknown>();
      const extensions = new Set<string>();
      for (const m of sources) {
        for (const f of m.spec?.config?.storage?.files ?? []) files.set(f.path, f);
        for (const e of m.spec?.extensions ?? []) extensions.add(e);
      }
      const spec = { config: { ignition: { version: "3.2.0" }, storage: { files: [...files.values()] } }, extensions: [...extensions].sort() };
      const name = `rendered-${pool.metadata.name}-${createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 32)}`;
      await this.client.apply({ apiVersion: "machineconfiguration.openshift.io/v1", kind: "MachineConfig", metadata: { name, annotations: { "machineconfiguration.openshift.io/generated-by-controller-version": "simulated" } }, spec });
      const source = sources.map((m) => ({ apiVersion: "machineconfiguration.openshift.io/v1", kind: "MachineConfig", name: m.metadata.name }));
      if (pool.spec.configuration?.name !== name) await this.client.mergePatch("MachineConfigPool", pool.metadata.name, { spec: { configuration: { name, source } } });
      out.set(pool.metadata.name, name);
    }
    return out;
  }

  /** A node booted with its pool's current config, as after installation. */
  async bootNode(name: string): Promise<void> {
    const pools = await this.pools();
    const node = await this.client.get<Node>("Node", name);
    const target = this.poolOf(node, pools)?.spec.configuration?.name;
    if (!target) throw new Error(`simulator: node ${name} is in no rendered pool; call render() first`);
    await this.annotate(name, { [A.current]: target, [A.desired]: target, [A.state]: "Done", [A.reason]: "" });
  }

  async annotate(name: string, a: Record<string, string | null>): Promise<void> {
    await this.client.mergePatch("Node", name, { metadata: { annotations: a } });
  }

  /** The node controller: nodes whose pool target differs from what they run start updating (state Working); paused pools wait. */
  async startUpdates(max = Infinity): Promise<string[]> {
    const pools = await this.pools();
    const started: string[] = [];
    for (const node of (await this.client.list<Node>("Node")).items) {
      if (started.length >= max) break;
      const a = node.metadata.annotations ?? {};
      const pool = this.poolOf(node, pools);
      const target = pool?.spec.configuration?.name;
      if (!target || pool?.spec.paused || a[A.state] !== "Done" || a[A.desired] === target) continue;
      await this.annotate(node.metadata.name, { [A.desired]: target, [A.state]: "Working" });
      started.push(node.metadata.name);
    }
    return started;
  }

  /** The daemon on a node finished: it rebooted into its desired config. */
  async finish(name: string): Promise<void> {
    const node = await this.client.get<Node>("Node", name);
    await this.annotate(name, { [A.current]: node.metadata.annotations?.[A.desired] ?? null, [A.state]: "Done", [A.reason]: "" });
  }

  async finishAll(): Promise<string[]> {
    const done: string[] = [];
    for (const node of (await this.client.list<Node>("Node")).items) {
      if (node.metadata.annotations?.[A.state] !== "Working") continue;
      await this.finish(node.metadata.name);
      done.push(node.metadata.name);
    }
    return done;
  }

  async degrade(name: string, reason: string): Promise<void> {
    await this.annotate(name, { [A.state]: "Degraded", [A.reason]: reason });
  }

  /** Pool status as the MCO computes it: counts over member nodes, Updated/Updating/Degraded, status.configuration once all are updated. */
  async syncStatus(): Promise<void> {
    const pools = await this.pools();
    const nodes = (await this.client.list<Node>("Node")).items;
    const now = new Date().toISOString();
    for (const pool of pools) {
      const members = nodes.filter((n) => this.poolOf(n, pools)?.metadata.name === pool.metadata.name);
      const target = pool.spec.configuration;
      const updated = members.filter((n) => n.metadata.annotations?.[A.current] === target?.name && n.metadata.annotations?.[A.state] === "Done");
      const degraded = members.filter((n) => ["Degraded", "Unreconcilable"].includes(n.metadata.annotations?.[A.state] ?? ""));
      const allUpdated = updated.length === members.length;
      const cond = (type: string, on: boolean, message = "") => ({ type, status: on ? "True" : "False", lastTransitionTime: now, reason: "", message });
      const status: Record<string, unknown> = {
        observedGeneration: pool.metadata.generation,
        machineCount: members.length,
        updatedMachineCount: updated.length,
        readyMachineCount: updated.length,
        unavailableMachineCount: members.length - updated.length,
        degradedMachineCount: degraded.length,
        conditions: [
          cond("Updated", allUpdated, allUpdated ? `All nodes are updated with ${target?.name}` : ""),
          cond("Updating", !allUpdated),
          cond("NodeDegraded", degraded.length > 0, degraded.map((n) => `Node ${n.metadata.name} is reporting: "${n.metadata.annotations?.[A.reason]}"`).join(", ")),
          cond("Degraded", degraded.length > 0),
        ],
      };
      if (allUpdated && target) status.configuration = target;
      else if (pool.status?.configuration) status.configuration = pool.status.configuration;
      await this.client.mergePatch("MachineConfigPool", pool.metadata.name, { status }, { subresource: "status" });
    }
  }

  /** One pass of the operator without finishing any node: render, start updates, write status. */
  async tick(): Promise<string[]> {
    await this.render();
    const started = await this.startUpdates();
    await this.syncStatus();
    return started;
  }

  /** Render and update until every node runs its pool's target. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await this.tick();
      if ((await this.finishAll()).length === 0) break;
    }
    await this.syncStatus();
  }
}

/**
 * OpenShift's CRDs from the shared fixtures beside the repository (never copied into it): the
 * first `shared/fixtures/openshift` found walking up from the repository root.
 */
export function openShiftFixturesDir(): string {
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  for (let dir = repoRoot, i = 0; i < 4; dir = dirname(dir), i++) {
    const candidate = join(dir, "..", "shared", "fixtures", "openshift");
    if (existsSync(join(candidate, "machineconfigpools.crd.yaml"))) return candidate;
  }
  throw new Error(`OpenShift CRD fixtures not found: expected ${join(repoRoot, "..", "shared", "fixtures", "openshift")} (a copy of shared/ beside the clone)`);
}

export function openShiftCrds(): KubeObject[] {
  const dir = openShiftFixturesDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => parse(readFileSync(join(dir, f), "utf8")) as KubeObject);
}
