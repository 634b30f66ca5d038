// `sandboxctl doctor`: runs the node agent's host probe on this machine and prints, per backend,
// what works, what is missing and how to fix it. The probe is injected (the agent owns it).
import type { Probe } from "../api/index.js";
import { EXIT } from "./exit-codes.js";
import type { Io } from "./io.js";
import { anyBackendUsable, explainProbe, renderDoctor, type Finding } from "./render-doctor.js";

export interface DoctorDeps {
  probe: () => Promise<Probe>;
  /** The agent's own explanation when it provides one; the CLI's printer otherwise. */
  explain?: (probe: Probe) => Finding[];
}

export async function doctor(deps: DoctorDeps, opts: { output: "text" | "json" }, io: Io): Promise<number> {
  const probe = await deps.probe();
  const findings = (deps.explain ?? explainProbe)(probe);
  if (opts.output === "json") io.out(JSON.stringify({ probe, findings }, null, 2) + "\n");
  else io.out(renderDoctor(probe, findings));
  return anyBackendUsable(probe) ? EXIT.ok : EXIT.unusable;
}
