// Kubernetes Events for transitions (core/v1 Event). The apiserver files Events about
// cluster-scoped objects in "default"; namespaced targets get theirs. Fire-and-forget: logged, never fatal.
import type { KubeClient, KubeObject } from "./client.js";
import { logger } from "../telemetry/logger.js";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  namespace?: string;
}

export class EventRecorder {
  private readonly log = logger("events");
  private pending = new Set<Promise<void>>();

  constructor(
    private readonly client: KubeClient,
    private readonly component = "sandbox-operator",
  ) {}

  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    const now = new Date().toISOString();
    const ev = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${target.name}.`, namespace: target.namespace ?? "default", name: "" },
      involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name: target.name, uid: target.uid, ...(target.namespace ? { namespace: target.namespace } : {}) },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: process.env.HOSTNAME ?? "local",
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.log.info({ object: `${target.kind}/${target.name}`, type, reason }, message);
    const p = this.client
      .create(ev as unknown as KubeObject)
      .then(() => undefined)
      .catch((e: Error) => this.log.warn({ err: e.message, reason }, "could not write Event"))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Waits for Events in flight (on shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
