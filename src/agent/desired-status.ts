// Builds the SandboxNode status the agent reports from what it just did (pure): phase, hashes,
// handlers, and Ready/Progressing/Degraded conditions per docs/agent-contract.md.
import type { Condition } from "../api/common.js";
import type { AgentPhase, HandlerStatus, Probe, SandboxNodeStatus } from "../api/sandboxnode.js";

export type Reason =
  | "WaitingForRollout"
  | "Applying"
  | "Verifying"
  | "Reverting"
  | "Verified"
  | "ApplyFailed"
  | "RuntimeRestartFailed"
  | "VerificationFailed"
  | "VerificationImagePullFailed"
  | "RuntimeNotFound"
  | "NoUsableBackend"
  | "PayloadInstallFailed"
  | "PayloadInUse"
  | "HandlerInUse"
  | "ConfigDrift"
  | "DriftRepeated"
  | "Reverted";

export interface StatusInput {
  phase: AgentPhase;
  reason: Reason;
  message: string;
  generation?: number;
  probe?: Probe;
  appliedHash?: string;
  failedHash?: string;
  handlers?: HandlerStatus[];
  agentVersion: string;
  now: string;
}

type Cond = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Sets one condition, keeping lastTransitionTime unless the status flips (as cert-manager does). */
export function setCondition(existing: readonly Condition[], c: Cond, generation: number | undefined, now: string): Condition[] {
  const prev = existing.find((x) => x.type === c.type);
  const next: Condition = {
    ...c,
    observedGeneration: generation,
    lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now,
  };
  if (next.observedGeneration === undefined) delete next.observedGeneration;
  return [...existing.filter((x) => x.type !== c.type), next].sort((a, b) => a.type.localeCompare(b.type));
}

function conditionsFor(i: StatusInput): Cond[] {
  const progressing = i.phase === "Applying" || i.phase === "Verifying" || i.phase === "Reverting" || i.phase === "RollingBack" || i.phase === "Probing";
  // Drift keeps Degraded through the re-apply: the node does not run what it reported verified.
  const failed = i.phase === "Failed" || i.reason === "RuntimeNotFound" || i.reason === "ConfigDrift" || i.reason === "DriftRepeated";
  const ready = i.reason === "Verified";
  return [
    { type: "Ready", status: ready ? "True" : "False", reason: i.reason, message: i.message },
    { type: "Progressing", status: progressing ? "True" : "False", reason: progressing ? i.reason : "Idle", message: progressing ? i.message : "" },
    { type: "Degraded", status: failed ? "True" : "False", reason: failed ? i.reason : "AsExpected", message: failed ? i.message : "" },
  ];
}

export function buildStatus(prev: SandboxNodeStatus | undefined, i: StatusInput): SandboxNodeStatus {
  let conditions = [...(prev?.conditions ?? [])];
  for (const c of conditionsFor(i)) conditions = setCondition(conditions, c, i.generation, i.now);
  const s: SandboxNodeStatus = {
    ...(prev ?? {}),
    agentVersion: i.agentVersion,
    heartbeatTime: i.now,
    phase: i.phase,
    appliedHash: i.appliedHash ?? "",
    conditions,
  };
  if (i.generation !== undefined) s.observedGeneration = i.generation;
  if (i.probe) s.probe = i.probe;
  if (i.failedHash) s.failedHash = i.failedHash;
  else delete s.failedHash;
  if (i.handlers) s.handlers = i.handlers;
  return s;
}

/** True when two statuses differ in more than the heartbeat (so a write is worth it). */
export function statusChanged(a: SandboxNodeStatus | undefined, b: SandboxNodeStatus): boolean {
  const strip = (s: SandboxNodeStatus | undefined) => JSON.stringify({ ...(s ?? {}), heartbeatTime: undefined });
  return strip(a) !== strip(b);
}
