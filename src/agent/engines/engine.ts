// One interface over the CRI runtimes the agent configures (containerd 1.x/2.x, CRI-O): each
// plans the file changes that make the runtime serve our handlers, and can take its edit back out.
import type { DesiredHandler } from "../../api/sandboxnode.js";
import type { Layout } from "../../render/node/layout.js";
import type { FileChange } from "../txn.js";

export interface PlanInput {
  handlers: readonly DesiredHandler[];
  allowedAnnotations: readonly string[];
  /** Paths as the runtime will read them (host view, or the host root in tests). */
  runtimeLayout: Layout;
  /** Maps a host path into the runtime's view (identity on a real host). */
  runtimePath: (hostPath: string) => string;
}

export interface Engine {
  readonly kind: "containerd" | "crio";
  /** Human name for logs and status, e.g. "containerd 1.6 (config.toml, in place)". */
  readonly describe: string;
  /** The CRI config changes for these handlers; content may equal what is on disk (no-op). */
  plan(input: PlanInput): FileChange[];
  /** Removes just our part from a foreign file someone edited after us (revert cannot restore the backup then). */
  unedit(path: string, current: string, input: Pick<PlanInput, "runtimePath">): string;
}
