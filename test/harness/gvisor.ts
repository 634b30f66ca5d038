// The gVisor binaries the agent ships in tests and the demo (runsc + containerd-shim-runsc-v1
// built from gVisor's Go branch), laid out as the agent's --payload-dir or built into the payload image.
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGvisorPayloadImage, type PayloadBuildResult } from "../../src/images/payload.js";
import { ensureBinary, GVISOR_VERSION } from "./binaries.js";

/**
 * A payload dir for the agent. For containerd 1.6 the shim is wrapped: today's gVisor shim answers
 * `start` with containerd 2's JSON bootstrap ({"version":2,"address":...}), which 1.6 cannot read
 * (it expects the bare address; 1.7 reads both). The wrapper prints just the address. On real 1.6
 * nodes ship a gVisor release built against containerd 1.x instead.
 */
export async function gvisorPayload(containerd: "1.6" | "2"): Promise<string> {
  const runsc = await ensureBinary("runsc");
  const shim = await ensureBinary("containerd-shim-runsc-v1");
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-payload-"));
  symlinkSync(runsc, join(dir, "runsc"));
  if (containerd === "2") {
    symlinkSync(shim, join(dir, "containerd-shim-runsc-v1"));
    return dir;
  }
  writeFileSync(join(dir, "containerd-shim-runsc-v1"), shimAdapter16(shim));
  chmodSync(join(dir, "containerd-shim-runsc-v1"), 0o755);
  return dir;
}

/** The containerd 1.6 adapter script around gVisor's shim at `shim` (see gvisorPayload). */
export function shimAdapter16(shim: string): string {
  return `#!/bin/sh
# containerd 1.6 adapter for gVisor's shim (see test/harness/gvisor.ts).
for a in "$@"; do [ "$a" = start ] && is_start=1; done
if [ -n "$is_start" ]; then
  out=$(${shim} "$@") || exit $?
  case "$out" in
    "{"*) printf '%s' "$out" | sed -n 's/.*"address":"\\([^"]*\\)".*/\\1/p' | tr -d '\\n' ;;
    *) printf '%s' "$out" ;;
  esac
  exit 0
fi
exec ${shim} "$@"
`;
}

/** Where the default payload's binaries come from (image label; docs/payloads.md). */
export const GVISOR_PAYLOAD_SOURCE = `gVisor ${GVISOR_VERSION} (Go branch, built from its Go module; shim with the OOM-score overlay of test/harness/gvisor-bin)`;

/** The gVisor payload image `npm run build:image` builds, from the shared build cache. */
export async function buildDefaultGvisorPayload(tag: string, repository?: string): Promise<PayloadBuildResult> {
  const dir = await gvisorPayload("2");
  try {
    return buildGvisorPayloadImage({ dir, tag, repository, source: GVISOR_PAYLOAD_SOURCE });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
