// What the agent does when its periodic drift check finds its runtime config gone (pure): re-apply
// at once, or, after our re-applies were overwritten too often in a row, hold off with a backoff.

export interface DriftState {
  /** How many drift checks in a row found our configuration overwritten (0 after a clean check). */
  streak: number;
  /** While set and in the future, the agent does not re-apply (reason DriftRepeated). */
  holdUntil?: number;
}

export interface DriftPolicy {
  /** Re-applies in a row that may be overwritten before the agent holds off. */
  repeatLimit: number;
  /** First hold; doubles with each further overwrite. */
  baseMs: number;
  maxMs: number;
}

export type DriftDecision =
  | { action: "clean"; next: DriftState }
  | { action: "reapply"; next: DriftState }
  | { action: "hold"; next: DriftState; waitMs: number };

/** The default: 3 overwrites in a row are re-applied at once; then holds of one interval, doubling, up to an hour. */
export function driftPolicy(intervalMs: number): DriftPolicy {
  return { repeatLimit: 3, baseMs: intervalMs, maxMs: Math.max(intervalMs, 3_600_000) };
}

export function decideDrift(prev: DriftState, drifted: boolean, now: number, p: DriftPolicy): DriftDecision {
  if (!drifted) return { action: "clean", next: { streak: 0 } };
  if (prev.holdUntil !== undefined) {
    // Drifted all along while we held off (we did not write): not one more overwrite.
    if (now < prev.holdUntil) return { action: "hold", next: prev, waitMs: prev.holdUntil - now };
    return { action: "reapply", next: { streak: prev.streak } };
  }
  const streak = prev.streak + 1;
  if (streak <= p.repeatLimit) return { action: "reapply", next: { streak } };
  const waitMs = Math.min(p.baseMs * 2 ** (streak - p.repeatLimit - 1), p.maxMs);
  return { action: "hold", next: { streak, holdUntil: now + waitMs }, waitMs };
}
