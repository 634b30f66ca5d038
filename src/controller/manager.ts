// Wires the controller: informers (SandboxConfig, SandboxNode, Node, RuntimeClass), one work
// queue per reconciler (installer, runtimeclasses, config), metrics, and an orderly stop.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { SANDBOXCONFIG_KIND, SANDBOXCONFIG_NAME, SANDBOXNODE_KIND, type SandboxConfig, type SandboxNode } from "../api/index.js";
import type { KubeClient, KubeObject } from "../kube/client.js";
import { EventRecorder } from "../kube/events.js";
import { Informer, type InformerOptions } from "../kube/informer.js";
import { WorkQueue, type Result } from "../kube/workqueue.js";
import { logger } from "../telemetry/logger.js";
import { ConfigReconciler } from "./config-status.js";
import { CONFIG_LABEL } from "./desired-runtimeclasses.js";
import { DaemonSetInstaller, type NodeObject } from "./installer-daemonset.js";
import type { NodeInstaller } from "./installer.js";
import { MachineConfigInstaller } from "./installer-machineconfig.js";
import { PlatformInstaller } from "./installer-platform.js";
import { RuntimeClassReconciler } from "./runtimeclasses.js";
import { Refusals } from "./refusals.js";
import { NODE_STATES } from "../api/index.js";

export interface ControllerOptions {
  client: KubeClient;
  /** The operator's namespace (Events about cluster-scoped objects go to "default" as the apiserver requires). */
  namespace: string;
  registry?: Registry;
  informer?: Pick<InformerOptions, "resyncMs" | "watchTimeoutSeconds" | "idleMs" | "baseBackoffMs" | "maxBackoffMs">;
  /** Recheck interval while pods hold an uninstall (default 5 s). */
  podRecheckMs?: number;
  /** Minimum ms between two status writes (default 500). */
  statusIntervalMs?: number;
  /** Retry backoff base / cap for failed reconciles. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  writeConcurrency?: number;
  /** Replaces the default: platform detection choosing the DaemonSet agent path or the OpenShift MachineConfig path. */
  installer?: (informers: Informers) => NodeInstaller;
  /** Platform detection is cached this long (default 5 min); re-run after any installer error. */
  platformRedetectMs?: number;
  /** How often to look at the Machine Config Operator's progress while it works (default 15 s). */
  mcoRecheckMs?: number;
}

export interface Informers {
  configs: Informer<SandboxConfig & KubeObject>;
  sandboxNodes: Informer<SandboxNode & KubeObject>;
  nodes: Informer<NodeObject>;
  runtimeClasses: Informer<KubeObject>;
}

const KEY = SANDBOXCONFIG_NAME;

/** Node annotations the MachineConfig path reads (the MCO's current/desired config and state). */
const MCO_ANNOTATION_PREFIX = "machineconfiguration.openshift.io/";

/** What the caches keep of a Node: name, uid, labels, the MCO annotations, spec.unschedulable (drain); no status or managedFields. */
export function slimNode(n: NodeObject): NodeObject {
  const { name, uid, resourceVersion, labels, annotations, deletionTimestamp } = n.metadata;
  const mco = Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(MCO_ANNOTATION_PREFIX));
  return {
    apiVersion: n.apiVersion,
    kind: n.kind,
    ...(n.spec?.unschedulable === true ? { spec: { unschedulable: true } } : {}),
    metadata: { name, uid, resourceVersion, ...(labels ? { labels } : {}), ...(mco.length ? { annotations: Object.fromEntries(mco) } : {}), ...(deletionTimestamp ? { deletionTimestamp } : {}) },
  };
}

/** Drops managedFields (often the largest part of an object, never read by the controller). */
export function withoutManagedFields<T extends KubeObject>(o: T): T {
  if (!o.metadata.managedFields) return o;
  const { managedFields: _, ...metadata } = o.metadata;
  return { ...o, metadata };
}

export class Controller {
  readonly informers: Informers;
  readonly installer: NodeInstaller;
  /** Derived objects the apiserver refused; status reports them (RuntimeClassRefused, NodeLabelRefused). */
  readonly refusals = new Refusals();
  private readonly queues: Record<"installer" | "runtimeclasses" | "config", WorkQueue>;
  private readonly events: EventRecorder;
  private readonly log = logger("controller");
  private started = false;
  private synced = false;

  constructor(private readonly o: ControllerOptions) {
    const { client } = o;
    const inf = o.informer ?? {};
    this.informers = {
      configs: new Informer(client, SANDBOXCONFIG_KIND, { ...inf, fieldSelector: `metadata.name=${KEY}`, transform: withoutManagedFields }),
      sandboxNodes: new Informer(client, SANDBOXNODE_KIND, { ...inf, labelSelector: `${CONFIG_LABEL}=cluster`, transform: withoutManagedFields }),
      nodes: new Informer(client, "Node", { ...inf, transform: slimNode }),
      runtimeClasses: new Informer(client, "RuntimeClass", { ...inf, transform: withoutManagedFields }),
    };
    this.installer = o.installer?.(this.informers) ?? new PlatformInstaller({
      client,
      redetectMs: o.platformRedetectMs,
      daemonSet: new DaemonSetInstaller({
        client,
        nodes: this.informers.nodes,
        sandboxNodes: this.informers.sandboxNodes,
        runtimeClasses: this.informers.runtimeClasses,
        podRecheckMs: o.podRecheckMs,
        writeConcurrency: o.writeConcurrency,
        refusals: this.refusals,
      }),
      machineConfig: new MachineConfigInstaller({ client, nodes: this.informers.nodes, recheckMs: o.mcoRecheckMs }),
    });
    this.events = new EventRecorder(client);
    const m = metrics(o.registry, {
      nodes: () => {
        const plan = this.installer.last;
        return NODE_STATES.map((s) => [s, plan ? plan.nodes.filter((n) => n.summary.state === s).length : 0]);
      },
      requests: () => [...client.requestCounts],
    });
    const queue = (name: string, minIntervalMs = 0) =>
      new WorkQueue({
        minIntervalMs,
        baseDelayMs: o.retryBaseMs ?? 200,
        maxDelayMs: o.retryMaxMs ?? 30_000,
        hooks: {
          onDepth: (d) => m?.depth.set({ controller: name }, d),
          onResult: (key, seconds, outcome, err) => {
            m?.duration.observe({ controller: name }, seconds);
            if (outcome !== "success") {
              m?.errors.inc({ controller: name, kind: outcome });
              this.log.warn({ controller: name, key, outcome, err: (err as Error)?.message }, "reconcile failed");
            }
          },
        },
      });
    this.queues = { installer: queue("installer"), runtimeclasses: queue("runtimeclasses"), config: queue("config", o.statusIntervalMs ?? 500) };
  }

  /** True once every informer has synced and the queues run. */
  get ready(): boolean {
    return this.synced;
  }

  private config(): SandboxConfig | null {
    return this.informers.configs.get(KEY) ?? null;
  }

  private enqueueAll = () => {
    for (const q of Object.values(this.queues)) q.add(KEY);
  };

  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const i of Object.values(this.informers)) {
      (i as Informer<KubeObject>).on(this.enqueueAll);
      i.start();
    }
    await Promise.all(Object.values(this.informers).map((i) => i.waitForSync(signal)));
    if (signal?.aborted) return;
    this.queues.installer.start(async (): Promise<Result | void> => {
      const r = await this.installer.reconcile(this.config());
      this.queues.config.add(KEY);
      this.queues.runtimeclasses.add(KEY);
      return r.requeueAfter !== undefined ? { requeueAfter: r.requeueAfter } : undefined;
    });
    const rc = new RuntimeClassReconciler(this.o.client, this.informers.runtimeClasses, this.installer, this.refusals);
    this.queues.runtimeclasses.start(async (): Promise<Result | void> => {
      const r = await rc.reconcile(this.config());
      // Status follows what was published or refused (it writes only when that changed).
      this.queues.config.add(KEY);
      return r.requeueAfter !== undefined ? { requeueAfter: r.requeueAfter } : undefined;
    });
    const cfg = new ConfigReconciler(this.o.client, this.informers.configs, this.informers.runtimeClasses, this.installer, this.events, this.refusals);
    this.queues.config.start(async () => {
      await cfg.reconcile(this.config());
    });
    this.synced = true;
    this.log.info({ nodes: this.informers.nodes.size, sandboxNodes: this.informers.sandboxNodes.size }, "caches synced; reconcilers running");
    this.enqueueAll();
  }

  /** Stops the queues (in-flight reconciles finish), then the informers; flushes Events. */
  async stop(): Promise<void> {
    this.synced = false;
    await Promise.all(Object.values(this.queues).map((q) => q.stop()));
    await Promise.all(Object.values(this.informers).map((i) => i.stop()));
    await this.events.flush();
  }
}

type Pairs = () => Array<[string, number]>;

function metrics(registry: Registry | undefined, sources: { nodes: Pairs; requests: Pairs }) {
  if (!registry) return undefined;
  const registers = [registry];
  return {
    duration: new Histogram({ name: "sandbox_operator_reconcile_duration_seconds", help: "Time one reconcile pass took, per controller.", labelNames: ["controller"], buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15], registers }),
    errors: new Counter({ name: "sandbox_operator_reconcile_errors_total", help: "Failed reconcile passes, per controller (kind: error = retried, terminal = not retried).", labelNames: ["controller", "kind"], registers }),
    depth: new Gauge({ name: "sandbox_operator_workqueue_depth", help: "Keys waiting in each controller's work queue.", labelNames: ["controller"], registers }),
    nodes: new Gauge({ name: "sandbox_operator_nodes", help: "Nodes by state in the last rollout plan.", labelNames: ["state"], registers, collect() {
      for (const [state, n] of sources.nodes()) this.set({ state }, n);
    } }),
    requests: new Gauge({ name: "sandbox_operator_api_requests", help: "Requests this process sent to the apiserver, by verb.", labelNames: ["verb"], registers, collect() {
      for (const [verb, n] of sources.requests()) this.set({ verb }, n);
    } }),
  };
}
