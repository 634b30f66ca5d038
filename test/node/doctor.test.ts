// The real `sandboxctl doctor` (a child process, as a user runs it) on this machine: a VM with
// /dev/kvm but no Kata guest that can run, and the gVisor binaries the agent ships. It must say
// KVM guests cannot run here and gVisor can, and exit 0 (docs/cli.md: a backend can run).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Probe } from "../../src/api/index.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { sandboxctl } from "../harness/sandboxctl.js";

describe("sandboxctl doctor on this machine", () => {
  let payload: string;
  let empty: string;
  before(async () => {
    payload = await gvisorPayload("2");
    empty = mkdtempSync(join(tmpdir(), "sandbox-operator-doctor-"));
  });
  after(() => {
    rmSync(payload, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });

  it("says KVM guests cannot run and gVisor can, and exits 0", async () => {
    const r = await sandboxctl(["doctor", "--payload-dir", payload]);
    assert.equal(r.code, EXIT.ok, `exit code\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^kvm: device \S+( \(kvm_\w+\))?, guests run no/m);
    assert.match(r.stdout, /^FAIL KVM\b/m);
    assert.match(r.stdout, /^FAIL kata-qemu\b/m);
    assert.match(r.stdout, /^ok {3}gvisor\b/m);
    assert.match(r.stdout, /^sandboxes can run here with: gvisor$/m);
  });

  it("says why Kata cannot run here, from this machine's kvm module and vhost-vsock", async () => {
    const pvm = existsSync("/sys/module/kvm_pvm");
    const vsock = existsSync("/dev/vhost-vsock");
    const r = await sandboxctl(["doctor", "--payload-dir", payload]);
    const line = (b: string) => r.stdout.split("\n").find((l) => new RegExp(`^FAIL ${b}\\b`).test(l)) ?? "";
    if (pvm) {
      assert.match(r.stdout, /^kvm: device yes \(kvm_pvm\), guests run no/m);
      for (const b of ["kata-qemu", "kata-clh", "kata-fc"]) assert.match(line(b), /Kata cannot run here: \/dev\/kvm is backed by kvm_pvm/, r.stdout);
      assert.match(r.stdout, /fix: Kata needs hardware virtualization/);
    }
    if (!vsock) assert.match(line("kata-qemu"), /no \/dev\/vhost-vsock/, r.stdout);
    assert.doesNotMatch(line("kata-fc"), /vhost-vsock/);
  });

  it("-o json carries the same verdicts", async () => {
    const r = await sandboxctl(["doctor", "--payload-dir", payload, "-o", "json"]);
    assert.equal(r.code, EXIT.ok, r.stderr);
    const { probe } = JSON.parse(r.stdout) as { probe: Probe };
    assert.equal(probe.kvm.guestsRun, false);
    const usable = probe.backends.filter((b) => b.usable).map((b) => b.backend);
    assert.deepEqual(usable, ["gvisor"]);
  });

  it("exits 6 and says so when nothing can run (an empty host root)", async () => {
    const r = await sandboxctl(["doctor", "--host-root", empty]);
    assert.equal(r.code, EXIT.unusable, `exit code\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /no sandbox backend can run here/);
  });
});
