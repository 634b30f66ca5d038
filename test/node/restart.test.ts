// The restart strategies with real processes on this machine: nsenter into a host process's
// namespaces, the host's systemctl (which fails here: PID 1 is not systemd), a program that exits
// non-zero. Each failure is a RuntimeRestartError whose message says what to do.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { commandRestarter, RuntimeRestartError, systemdRestarter } from "../../src/agent/restart.js";

for (const b of ["/usr/bin/nsenter", "/usr/bin/systemctl", "/bin/false"]) if (!existsSync(b)) throw new Error(`${b} is missing: apt-get install util-linux systemd coreutils`);

it("systemd strategy: nsenter enters this process's namespaces and runs the host's systemctl, which says PID 1 is not systemd", async () => {
  await assert.rejects(systemdRestarter({ hostPid: process.pid }).restart("containerd"), (e: unknown) => {
    assert.ok(e instanceof RuntimeRestartError);
    assert.match(e.message, new RegExp(`^host PID ${process.pid} is not systemd \\(System has not been booted with systemd`));
    return true;
  });
});

it("systemd strategy: a host PID whose namespaces cannot be opened -> says hostPID/privileged", async () => {
  // Without hostPID the pod's /proc lacks the host's processes; a PID that does not exist fails the same way.
  const max = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  const gone = [max - 1, max - 2, max - 3].find((p) => !existsSync(`/proc/${p}`))!;
  await assert.rejects(systemdRestarter({ hostPid: gone }).restart("crio"), new RegExp(`^RuntimeRestartError: cannot enter the namespaces of host PID ${gone} \\(nsenter: cannot open /proc/${gone}/ns/\\w+: No such file or directory\\): the agent pod needs hostPID: true`));
});

it("command strategy: argv without a shell; non-zero exit and a missing program are named", async () => {
  await assert.rejects(commandRestarter("/bin/false --ignored").restart("containerd"), /^RuntimeRestartError: restart command "\/bin\/false --ignored" exited 1$/);
  await assert.rejects(commandRestarter("/nonexistent/restart-cri").restart("containerd"), /restart command "\/nonexistent\/restart-cri" \/nonexistent\/restart-cri not found \(the agent image has no shell/);
  await commandRestarter("/bin/true").restart("containerd");
});

it("command strategy: the probed unit reaches the program as $SANDBOX_RUNTIME_UNIT", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-restart-"));
  const script = join(dir, "restart-cri");
  writeFileSync(script, `#!/bin/sh\necho "$SANDBOX_RUNTIME $SANDBOX_RUNTIME_UNIT" > ${dir}/seen\n`);
  chmodSync(script, 0o755);
  try {
    await commandRestarter(script).restart("containerd", "k3s-agent.service");
    assert.equal(readFileSync(join(dir, "seen"), "utf8"), "containerd k3s-agent.service\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
