// Applies a MachineConfig's Ignition config to a host-root directory with Ignition itself (v2.24.0,
// built from its Go module): its fetch-offline stage on the `file` platform, then its files stage.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { IgnitionConfig, MachineConfig } from "../../src/openshift/render-machineconfig.js";
import { ensureBinary } from "./binaries.js";

const run = promisify(execFile);

/**
 * Runs `ignition` in a private mount namespace where every mount but `root` and Ignition's own
 * work dir is read-only: a write Ignition made outside the root fails the stage instead of
 * landing on this machine. Mounts that cannot be made read-only are named and fail the run.
 */
const SANDBOX_SCRIPT = String.raw`set -eu
root=$1 work=$2; shift 2
mount --bind "$root" "$root"
mount --bind "$work" "$work"
failed=""
for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case "$mp" in "$root"|"$root"/*|"$work"|"$work"/*) continue ;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || failed="$failed $mp"
done
case "$failed" in *[!\ ]*) echo "could not make these mounts read-only for Ignition:$failed" >&2; exit 97 ;; esac
exec "$@"`;

export interface IgnitionRun {
  /** Ignition's log of both stages (it logs to stdout with --log-to-stdout). */
  log: string;
}

/**
 * What a node's first boot does with the MachineConfig's Ignition part (the MCS serves it, Ignition
 * fetches and runs the files stage): the files land under `root` as Ignition writes them. The
 * MachineConfig's `extensions` are the machine-config-daemon's (rpm-ostree), not Ignition's; they are not applied.
 */
export async function ignitionApply(config: MachineConfig | IgnitionConfig, root: string): Promise<IgnitionRun> {
  const ignition = await ensureBinary("ignition");
  const ign = "spec" in config ? config.spec.config : config;
  const work = mkdtempSync(join(tmpdir(), "sandbox-operator-ignition-"));
  mkdirSync(root, { recursive: true });
  writeFileSync(join(work, "config.ign"), JSON.stringify(ign));
  // Every path Ignition writes by default outside --root (/run/ignition.json, /run/ignition/state,
  // /run/ignition/neednet) moved into its work dir.
  const common = ["--platform", "file", "--log-to-stdout", "--config-cache", join(work, "ignition.json"), "--state-file", join(work, "state"), "--neednet", join(work, "neednet")];
  const env = { ...process.env, IGNITION_CONFIG_FILE: join(work, "config.ign") };
  let log = "";
  try {
    for (const stage of ["fetch-offline", "files"]) {
      const args = ["--mount", "--propagation", "private", "--", "sh", "-c", SANDBOX_SCRIPT, "sh", root, work, ignition, ...common, "--stage", stage, "--root", root];
      try {
        const r = await run("unshare", args, { env, maxBuffer: 16 << 20 });
        log += r.stdout + r.stderr;
      } catch (e) {
        const err = e as Error & { stdout?: string; stderr?: string; code?: number };
        throw new Error(`Ignition's ${stage} stage failed (exit ${err.code}) on root ${root}:\n${log}${err.stdout ?? ""}${err.stderr ?? err.message}`, { cause: e });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { log };
}
