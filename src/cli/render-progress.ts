// Pure printers for install/uninstall progress: Deployment and DaemonSet rollout lines, why
// pods are not ready, and what a SandboxConfig's conditions say blocks its removal.
import type { Condition } from "../api/index.js";

export interface WorkloadStatus {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    // DaemonSet
    desiredNumberScheduled?: number;
    numberReady?: number;
    updatedNumberScheduled?: number;
  };
}

export interface Progress {
  name: string;
  desired: number;
  ready: number;
  updated: number;
  done: boolean;
}

/** A Deployment is ready when the new template is observed, fully rolled out and every replica ready. */
export function deploymentProgress(d: WorkloadStatus | null, name: string): Progress {
  if (!d) return { name, desired: 0, ready: 0, updated: 0, done: false };
  const desired = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  const observed = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 1);
  const updated = s.updatedReplicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const available = s.availableReplicas ?? 0;
  return { name, desired, ready, updated, done: observed && updated >= desired && ready >= desired && available >= desired && (s.replicas ?? 0) <= desired };
}

export function daemonSetProgress(d: WorkloadStatus | null, name: string): Progress {
  const s = d?.status ?? {};
  const desired = s.desiredNumberScheduled ?? 0;
  const ready = s.numberReady ?? 0;
  return { name, desired, ready, updated: s.updatedNumberScheduled ?? 0, done: ready >= desired };
}

export function progressLine(p: Progress): string {
  return `${p.done ? "✓" : "…"} ${p.name}: ${p.ready}/${p.desired} ready, ${p.updated}/${p.desired} up to date`;
}

export interface PodLike {
  metadata: { name: string };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    containerStatuses?: Array<{ name: string; ready: boolean; state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; exitCode?: number } } }>;
  };
}

/** One line per pod that is not ready, with the kubelet's or scheduler's reason. */
export function podProblems(pods: PodLike[]): string[] {
  const out: string[] = [];
  for (const pod of [...pods].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const waiting = pod.status?.containerStatuses?.find((c) => !c.ready && (c.state?.waiting || c.state?.terminated));
    const unscheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
    if (waiting?.state?.waiting) out.push(`pod ${pod.metadata.name}: ${waiting.name} ${waiting.state.waiting.reason ?? "Waiting"}${waiting.state.waiting.message ? `: ${waiting.state.waiting.message}` : ""}`);
    else if (waiting?.state?.terminated) out.push(`pod ${pod.metadata.name}: ${waiting.name} exited ${waiting.state.terminated.exitCode ?? "?"} (${waiting.state.terminated.reason ?? "Error"})`);
    else if (unscheduled) out.push(`pod ${pod.metadata.name}: not scheduled (${unscheduled.reason ?? "Unschedulable"}${unscheduled.message ? `: ${unscheduled.message}` : ""})`);
    else if (pod.status?.phase !== "Running") out.push(`pod ${pod.metadata.name}: ${pod.status?.phase ?? "Pending"}`);
  }
  return out;
}

/**
 * What the SandboxConfig's conditions say about a pending uninstall. `blocked` is true when a
 * condition reports that something outside the operator (running pods) holds it up.
 */
export function uninstallState(conditions: Condition[]): { blocked: boolean; lines: string[] } {
  const lines: string[] = [];
  let blocked = false;
  for (const c of conditions) {
    const interesting = (c.type === "Ready" && c.status === "False") || (c.type !== "Ready" && c.status === "True");
    if (!interesting) continue;
    lines.push(`${c.type}=${c.status} ${c.reason}${c.message ? `: ${c.message}` : ""}`);
    if (/Block|PodsRunning|PodsStillRunning|SandboxedPods|InUse/i.test(c.reason)) blocked = true;
  }
  return { blocked, lines };
}
