// Finds the node agent's host probe for `sandboxctl doctor` (src/agent/probe: probeHost,
// explainProbe). The agent is built separately; until it is part of the build, doctor says so.
import type { Probe } from "../api/index.js";
import { CliError, EXIT } from "./exit-codes.js";
import type { DoctorDeps } from "./doctor.js";
import type { Finding } from "./render-doctor.js";

export interface HostProbeOptions {
  /** "/" on the host itself. */
  hostRoot: string;
  criSocket?: string;
  /** Where runsc + containerd-shim-runsc-v1 the agent would install live (they count as installable). */
  payloadDir?: string;
}

interface ProbeModule {
  probeHost?: (o: HostProbeOptions) => Promise<Probe>;
}
interface AdviceModule {
  explainProbe?: (p: Probe) => Array<{ subject: string; ok: boolean; detail: string; fix?: string }>;
}

// Variables, so the CLI builds before the agent lands; the agent's module layout as it is today.
const PROBE_MODULE = "../agent/probe/probe.js";
const ADVICE_MODULE = "../agent/probe/render.js";

async function load<T>(spec: string): Promise<T | undefined> {
  try {
    return (await import(spec)) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw e;
  }
}

export async function loadHostProbe(opts: HostProbeOptions): Promise<DoctorDeps> {
  const probe = await load<ProbeModule>(PROBE_MODULE);
  if (typeof probe?.probeHost !== "function") {
    throw new CliError(EXIT.error, "doctor needs the node agent's host probe (src/agent/probe: probeHost), which this build does not include yet");
  }
  const probeHost = probe.probeHost;
  const advice = await load<AdviceModule>(ADVICE_MODULE);
  const explain = advice?.explainProbe;
  return {
    probe: () => probeHost(opts),
    // The agent's own advice, in the doctor's shape; the CLI's printer otherwise.
    ...(explain ? { explain: (p: Probe): Finding[] => explain(p).map((a) => ({ backend: a.subject, ok: a.ok, summary: a.detail, ...(a.fix ? { fix: a.fix } : {}) })) } : {}),
  };
}
