// How the agent restarts the node's CRI runtime: systemd on a host (through the host's PID 1
// namespaces), an admin-given command, or nothing. Tests restart their own containerd.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Restarter {
  readonly name: string;
  restart(unit: "containerd" | "crio"): Promise<void>;
}

/** systemctl in the host's namespaces (the agent pod runs with hostPID), else chrooted into the host root. */
export function systemdRestarter(hostRoot: string): Restarter {
  return {
    name: "systemd",
    async restart(unit) {
      try {
        await run("nsenter", ["--target", "1", "--mount", "--", "systemctl", "restart", unit], { timeout: 120_000 });
      } catch (e) {
        if (hostRoot === "/") throw new Error(`systemctl restart ${unit} failed: ${(e as Error).message}`, { cause: e });
        await run("chroot", [hostRoot, "systemctl", "restart", unit], { timeout: 120_000 }).catch((e2: Error) => {
          throw new Error(`systemctl restart ${unit} failed via nsenter (${(e as Error).message.split("\n")[0]}) and chroot (${e2.message.split("\n")[0]}); run the agent with hostPID or use --restart-strategy=command`, { cause: e2 });
        });
      }
    },
  };
}

/** Runs `command` with sh -c; the runtime kind is in $SANDBOX_RUNTIME. */
export function commandRestarter(command: string): Restarter {
  return {
    name: "command",
    async restart(unit) {
      await run("sh", ["-c", command], { timeout: 120_000, env: { ...process.env, SANDBOX_RUNTIME: unit } }).catch((e: Error) => {
        throw new Error(`restart command "${command}" failed: ${e.message}`, { cause: e });
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
