// How the agent restarts the node's CRI runtime: the host's systemd (systemctl run through nsenter
// in the host PID 1's namespaces; the pod has hostPID), an admin-given program, or nothing.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const TIMEOUT_MS = 120_000;

export type RuntimeKind = "containerd" | "crio";

export interface Restarter {
  readonly name: string;
  /** `unit`: the runtime's systemd unit as the probe found it (its cgroup, or its distribution's). */
  restart(kind: RuntimeKind, unit?: string): Promise<void>;
}

/** A restart that did not happen or did not bring the runtime back; status reason RuntimeRestartFailed. */
export class RuntimeRestartError extends Error {
  override readonly name = "RuntimeRestartError";
}

/** argv that runs `argv` on the host: in the mount and PID namespaces of host process `hostPid` (PID 1 = the host's init). */
export function hostCommand(hostPid: number, argv: readonly string[]): string[] {
  return ["nsenter", "--target", String(hostPid), "--mount", "--pid", "--", ...argv];
}

/** What execFile rejects with. */
export interface ExecFailure {
  code?: number | string | null;
  signal?: string | null;
  killed?: boolean;
  stderr?: string;
  message: string;
}

const tail = (s: string | undefined) => (s ?? "").trim().split("\n").slice(-3).join(" / ");

/** Turns a failed `nsenter ... systemctl restart <unit>` into what failed and what to do (pure). */
export function explainSystemdFailure(e: ExecFailure, unit: string, hostPid: number): string {
  const err = tail(e.stderr);
  if (e.code === "ENOENT") return `nsenter not found on the agent's PATH (${e.message}): run the agent from the sandbox-operator image, which ships /usr/bin/nsenter, or install util-linux`;
  if (e.killed || e.signal) return `systemctl restart ${unit} did not finish within ${TIMEOUT_MS / 1000} s (killed by ${e.signal ?? "timeout"}); check \`systemctl status ${unit}\` and \`journalctl -u ${unit}\` on the node`;
  if (/nsenter: (cannot open \/proc\/\d+\/ns|reassociate to namespace|setns)/.test(err)) {
    return `cannot enter the namespaces of host PID ${hostPid} (${err}): the agent pod needs hostPID: true and privileged: true (deploy/agent.yaml); --host-pid names another host process`;
  }
  if (/nsenter: failed to execute systemctl/.test(err)) return `the host has no systemctl (${err}): use --restart-strategy=command with the host's own way to restart ${unit}`;
  if (/not been booted with systemd|Failed to connect to bus/.test(err)) {
    return `host PID ${hostPid} is not systemd (${err}): on a node without systemd use --restart-strategy=command with the host's own restart command`;
  }
  return `systemctl restart ${unit} on the host exited ${e.code ?? "?"}${err ? `: ${err}` : ""}; check \`systemctl status ${unit}\` and \`journalctl -u ${unit}\` on the node; if the runtime's unit has another name pass --runtime-unit`;
}

export interface SystemdOptions {
  /** The host process whose namespaces systemctl runs in (default 1: the host's init, visible with hostPID). */
  hostPid?: number;
  /** --runtime-unit: the runtime's unit whatever the probe found (default: the probed unit, else containerd or crio). */
  unit?: string;
}

/** Which unit the systemd strategy restarts: --runtime-unit, else the probed one (the runtime's cgroup or its distribution's), else the runtime's name. */
export const unitToRestart = (flag: string | undefined, probed: string | undefined, kind: RuntimeKind) => flag ?? probed ?? kind;

/** `systemctl restart <unit>` as the host's own, through nsenter (the image carries nsenter, the host systemctl). */
export function systemdRestarter(o: SystemdOptions = {}): Restarter {
  const hostPid = o.hostPid ?? 1;
  return {
    name: "systemd",
    async restart(kind, probed) {
      const unit = unitToRestart(o.unit, probed, kind);
      const [cmd, ...args] = hostCommand(hostPid, ["systemctl", "restart", unit]);
      await run(cmd!, args, { timeout: TIMEOUT_MS }).catch((e: ExecFailure) => {
        throw new RuntimeRestartError(explainSystemdFailure(e, unit, hostPid), { cause: e });
      });
    },
  };
}

/** `--restart-command` as argv: split on whitespace, no shell (the agent image has none). */
export function splitCommand(command: string): string[] {
  const argv = command.trim().split(/\s+/).filter(Boolean);
  if (argv.length === 0) throw new Error("--restart-command is empty: give a program and its arguments");
  return argv;
}

/** Runs a program with arguments (no shell); the runtime kind is in $SANDBOX_RUNTIME, its probed systemd unit in $SANDBOX_RUNTIME_UNIT. */
export function commandRestarter(command: string): Restarter {
  const [cmd, ...args] = splitCommand(command);
  return {
    name: "command",
    async restart(kind, unit) {
      await run(cmd!, args, { timeout: TIMEOUT_MS, env: { ...process.env, SANDBOX_RUNTIME: kind, ...(unit ? { SANDBOX_RUNTIME_UNIT: unit } : {}) } }).catch((e: ExecFailure) => {
        const why =
          e.code === "ENOENT"
            ? `${cmd} not found (the agent image has no shell or host tools; to run a host program use nsenter, e.g. "nsenter --target 1 --mount --pid -- /usr/local/sbin/restart-cri")`
            : e.killed || e.signal
              ? `did not finish within ${TIMEOUT_MS / 1000} s`
              : `exited ${e.code ?? "?"}${tail(e.stderr) ? `: ${tail(e.stderr)}` : ""}`;
        throw new RuntimeRestartError(`restart command "${command}" ${why}`, { cause: e });
      });
    },
  };
}

export const noRestarter: Restarter = {
  name: "none",
  async restart() {
    // The admin restarts the runtime; verification shows whether the new config is live.
  },
};
