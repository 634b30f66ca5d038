// Per-node conditions for the MachineConfig path (metav1.Condition shape), from the rollout
// tracking: what SandboxNode.status.conditions should say when the MCO, not the agent, applies.
import type { Condition, NodeSummary } from "../api/index.js";

/**
 * Ready / Progressing / Degraded for one node. `previous` keeps lastTransitionTime when a
 * condition's status did not flip; `now` is injected so the function stays pure.
 */
export function machineConfigNodeConditions(node: NodeSummary, generation: number, now: string, previous: Condition[] = []): Condition[] {
  const reason = node.reason ?? node.state;
  const message = node.message ?? "";
  const want: Array<Pick<Condition, "type" | "status" | "reason" | "message">> = [
    { type: "Ready", status: node.state === "Ready" ? "True" : "False", reason, message },
    { type: "Progressing", status: node.state === "Progressing" || node.state === "Uninstalling" ? "True" : "False", reason, message },
    { type: "Degraded", status: node.state === "Degraded" ? "True" : "False", reason: node.state === "Degraded" ? reason : "AsExpected", message: node.state === "Degraded" ? message : "" },
  ];
  return want.map((c) => {
    const prev = previous.find((p) => p.type === c.type);
    return { ...c, observedGeneration: generation, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now };
  });
}
