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
/** `runscAt` (crio only): the runsc the OOM clamp runs, where the runtime sees it; default the cached build. */
export async function gvisorPayload(runtime: "1.6" | "2" | "crio", runscAt?: string): Promise<string> {
  const runsc = runscAt ?? (await ensureBinary("runsc"));
  const shim = await ensureBinary("containerd-shim-runsc-v1");
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-payload-"));
  if (runtime === "crio") {
    writeFileSync(join(dir, "runsc"), runscOomClamp(runsc));
    chmodSync(join(dir, "runsc"), 0o755);
    symlinkSync(shim, join(dir, "containerd-shim-runsc-v1"));
    return dir;
  }
  symlinkSync(runsc, join(dir, "runsc"));
  if (runtime === "2") {
    symlinkSync(shim, join(dir, "containerd-shim-runsc-v1"));
    return dir;
  }
  writeFileSync(join(dir, "containerd-shim-runsc-v1"), shimAdapter16(shim));
  chmodSync(join(dir, "containerd-shim-runsc-v1"), 0o755);
  return dir;
}

/**
 * Test-only runsc wrapper for CRI-O on this machine: CRI-O gives the pod's infra container
 * oomScoreAdj -998 and has no counterpart of containerd's restrict_oom_score_adj, and root here
 * lacks CAP_SYS_RESOURCE, so runsc could not apply it. The wrapper raises negative scores in the
 * bundle's config.json to 0, then runs runsc unchanged. Real nodes run runsc itself.
 */
export function runscOomClamp(runsc: string): string {
  return bundleConfigWrapper("runsc", runsc, ["s/\"oomScoreAdj\": *-[0-9]*/\"oomScoreAdj\": 0/"]);
}

/**
 * A test-only wrapper around an OCI runtime (`binary`, at `path`): before it runs, each sed
 * expression edits the bundle's config.json (found from --bundle), then the runtime runs unchanged.
 */
export function bundleConfigWrapper(name: string, path: string, sedExpressions: readonly string[]): string {
  return `#!/bin/sh
# Test-only ${name} wrapper: edits the bundle's config.json for this VM (see test/harness/gvisor.ts, node-crio.ts).
prev=
for a in "$@"; do
  case "$a" in --bundle=*) bundle=\${a#--bundle=} ;; esac
  [ "$prev" = --bundle ] && bundle=$a
  prev=$a
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i ${sedExpressions.map((e) => `-e '${e}'`).join(" ")} "$bundle/config.json"
fi
exec ${path} "$@"
`;
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

/**
 * A gVisor payload image for CRI-O on this machine: runsc is the test-only OOM-score wrapper
 * (runscOomClamp) around the cached runsc, the shim is the default payload's. Real CRI-O nodes
 * take the default payload (buildDefaultGvisorPayload); this machine's root lacks CAP_SYS_RESOURCE.
 */
export async function buildCrioTestGvisorPayload(tag: string, opts: { runscAt?: string; repository?: string } = {}): Promise<PayloadBuildResult> {
  const dir = await gvisorPayload("crio", opts.runscAt);
  try {
    return buildGvisorPayloadImage({ dir, tag, repository: opts.repository, source: `${GVISOR_PAYLOAD_SOURCE}; runsc behind the test-only OOM-score wrapper for CRI-O` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
