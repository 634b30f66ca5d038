// CRI-O engine: one owned drop-in under /etc/crio/crio.conf.d (read in lexical order), nothing
// else touched; removing the file is the whole revert.
import { join } from "node:path";
import { CRIO_DROPIN } from "../../../render/node/layout.js";
import type { FileChange } from "../../txn.js";
import type { Engine, PlanInput } from "../engine.js";
import { renderCrioDropIn } from "../../../render/node/crio-dropin.js";

export class CrioEngine implements Engine {
  readonly kind = "crio" as const;
  readonly describe = `CRI-O (drop-in ${CRIO_DROPIN})`;

  constructor(private readonly hostRoot: string) {}

  plan(input: PlanInput): FileChange[] {
    const content = input.handlers.length ? Buffer.from(renderCrioDropIn(input.handlers, { layout: input.runtimeLayout, allowedAnnotations: input.allowedAnnotations })) : null;
    return [{ path: join(this.hostRoot, CRIO_DROPIN), content, foreign: false, restart: true }];
  }

  unedit(_path: string, current: string): string {
    return current;
  }
}
