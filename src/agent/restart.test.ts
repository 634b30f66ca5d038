// Restart strategies, pure parts: the host command line and what each failure tells the admin.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { explainSystemdFailure, hostCommand, splitCommand, unitToRestart, type ExecFailure } from "./restart.js";

it("hostCommand runs argv in host PID's mount and PID namespaces", () => {
  assert.deepEqual(hostCommand(1, ["systemctl", "restart", "containerd"]), ["nsenter", "--target", "1", "--mount", "--pid", "--", "systemctl", "restart", "containerd"]);
});

it("splitCommand: program and arguments on whitespace, no shell; empty is an error", () => {
  assert.deepEqual(splitCommand("  nsenter --target 1 --mount --pid --  /usr/local/sbin/restart-cri "), ["nsenter", "--target", "1", "--mount", "--pid", "--", "/usr/local/sbin/restart-cri"]);
  assert.throws(() => splitCommand("   "), /--restart-command is empty/);
});

describe("explainSystemdFailure", () => {
  const cases: Array<[string, ExecFailure, RegExp]> = [
    ["no nsenter in the image", { code: "ENOENT", message: "spawn nsenter ENOENT" }, /nsenter not found on the agent's PATH \(spawn nsenter ENOENT\): run the agent from the sandbox-operator image/],
    ["no hostPID / not privileged", { code: 1, stderr: "nsenter: cannot open /proc/1/ns/pid: Permission denied\n", message: "Command failed" }, /cannot enter the namespaces of host PID 1 \(nsenter: cannot open \/proc\/1\/ns\/pid: Permission denied\): the agent pod needs hostPID: true and privileged: true/],
    ["host without systemctl", { code: 127, stderr: "nsenter: failed to execute systemctl: No such file or directory\n", message: "x" }, /the host has no systemctl .*use --restart-strategy=command/],
    ["PID 1 is not systemd", { code: 1, stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n", message: "x" }, /host PID 7 is not systemd \(System has not been booted .* \/ Failed to connect to bus: Host is down\)/],
    ["the unit fails", { code: 1, stderr: 'Job for containerd.service failed because the control process exited with error code.\nSee "systemctl status containerd.service" and "journalctl -xeu containerd.service" for details.\n', message: "x" }, /^systemctl restart containerd on the host exited 1: Job for containerd.service failed .*; check `systemctl status containerd` and `journalctl -u containerd` on the node; if the runtime's unit has another name pass --runtime-unit$/],
    ["timeout", { code: null, killed: true, signal: "SIGTERM", message: "x" }, /did not finish within 120 s \(killed by SIGTERM\)/],
  ];
  for (const [name, e, want] of cases) it(name, () => assert.match(explainSystemdFailure(e, "containerd", name === "PID 1 is not systemd" ? 7 : 1), want));
});

it("unitToRestart: --runtime-unit, else the probed unit (k3s.service from the cgroup), else the runtime's name", () => {
  assert.equal(unitToRestart("rke2-agent", "rke2-server.service", "containerd"), "rke2-agent");
  assert.equal(unitToRestart(undefined, "k3s.service", "containerd"), "k3s.service");
  assert.equal(unitToRestart(undefined, undefined, "crio"), "crio");
});
