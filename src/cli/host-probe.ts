// Finds the node agent's host probe for `sandboxctl doctor`. The agent (src/agent/probe) is built
// separately; until it is part of the build, doctor says so instead of guessing.
import type { Probe } from "../api/index.js";
import { CliError, EXIT } from "./exit-codes.js";
import type { DoctorDeps } from "./doctor.js";

/** Module specifiers tried in order; a variable so the build does not require the agent yet. */
const CANDIDATES = ["../agent/probe/index.js", "../agent/probe.js"];

export async function loadHostProbe(): Promise<DoctorDeps> {
  for (const spec of CANDIDATES) {
    let mod: { probeHost?: (opts?: unknown) => Promise<Probe> };
    try {
      mod = (await import(spec)) as typeof mod;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND") continue;
      throw e;
    }
    if (typeof mod.probeHost === "function") {
      const probeHost = mod.probeHost;
      return { probe: () => probeHost() };
    }
  }
  throw new CliError(EXIT.error, "doctor needs the node agent's host probe (src/agent/probe: probeHost), which this build does not include yet");
}
