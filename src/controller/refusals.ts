// Writes of derived objects (a RuntimeClass, a Node's labels) the apiserver refused: kept per object
// so status says Degraded with the apiserver's own message instead of Ready, and retried slowly.
import { ApiError } from "../kube/client.js";

export interface Refusal {
  kind: "RuntimeClass" | "Node";
  name: string;
  /** The apiserver's message (validation, admission webhook or ValidatingAdmissionPolicy). */
  message: string;
}

/** How long until a refused write is tried again without an event (a policy may have been fixed). */
export const REFUSAL_RETRY_MS = 30_000;

/**
 * The apiserver refused the object itself (invalid, denied by admission, forbidden): trying again
 * at once would fail the same way. 404/409/5xx are not refusals; they are retried as errors.
 */
export const isRefusal = (e: unknown): e is ApiError => e instanceof ApiError && (e.status === 400 || e.status === 403 || e.status === 422);

/** The apiserver's message without our client's `METHOD path: ` prefix. */
const apiserverMessage = (e: ApiError) => e.message.replace(/^[A-Z]+ \/\S*: /, "");

export class Refusals {
  private readonly byKey = new Map<string, Refusal>();

  /** Records a refusal; true when this changed what is recorded (status must be rewritten). */
  record(kind: Refusal["kind"], name: string, e: ApiError): boolean {
    const key = `${kind}/${name}`;
    const message = apiserverMessage(e);
    if (this.byKey.get(key)?.message === message) return false;
    this.byKey.set(key, { kind, name, message });
    return true;
  }

  /** Forgets a refusal (the write went through, or the object is no longer wanted); true when one was recorded. */
  clear(kind: Refusal["kind"], name: string): boolean {
    return this.byKey.delete(`${kind}/${name}`);
  }

  /** Makes the refusals of `kind` exactly `now` (one pass's findings, swapped in at once so status never sees a half pass). */
  replace(kind: Refusal["kind"], now: ReadonlyMap<string, ApiError>): void {
    this.prune(kind, (name) => now.has(name));
    for (const [name, e] of now) this.record(kind, name, e);
  }

  /** Forgets every refusal of `kind` whose name `keep` rejects. */
  prune(kind: Refusal["kind"], keep: (name: string) => boolean): void {
    for (const r of this.list(kind)) if (!keep(r.name)) this.clear(kind, r.name);
  }

  list(kind?: Refusal["kind"]): Refusal[] {
    return [...this.byKey.values()].filter((r) => !kind || r.kind === kind).sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
  }
}
