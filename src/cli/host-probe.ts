// Wires `sandboxctl doctor` to the node agent's host probe (src/agent/probe): the same probe and
// the same advice the agent uses, so doctor and the agent never disagree about a host.
import type { Probe } from "../api/index.js";
import { probeHost } from "../agent/probe/probe.js";
import { explainProbe } from "../agent/probe/render.js";
import type { DoctorDeps } from "./doctor.js";
import type { Finding } from "./render-doctor.js";

export interface HostProbeOptions {
  /** "/" on the host itself. */
  hostRoot: string;
  criSocket?: string;
  /** Where runsc + containerd-shim-runsc-v1 the agent would install live (they count as installable). */
  payloadDir?: string;
}

export function hostProbe(opts: HostProbeOptions): DoctorDeps {
  return {
    probe: () => probeHost(opts),
    // The agent's advice in the doctor's shape (the doctor's printer lays it out).
    explain: (p: Probe): Finding[] => explainProbe(p).map((a) => ({ backend: a.subject, ok: a.ok, summary: a.detail, ...(a.fix ? { fix: a.fix } : {}) })),
  };
}
