// explainProbe: every backend gets a line, failures get a fix.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { Probe } from "../../api/sandboxnode.js";
import { explainProbe, formatProbeAdvice } from "./render.js";

const probe: Probe = {
  arch: "amd64",
  kernel: "6.1.0",
  cri: { kind: "containerd", version: "1.6.20", configPath: "/etc/containerd/config.toml" },
  kvm: { device: true, guestsRun: false, nested: true, message: "/dev/kvm opens but a test guest printed nothing" },
  vhostVsock: false,
  backends: [
    { backend: "kata-qemu", installed: false, usable: false, message: "containerd-shim-kata-v2 missing" },
    { backend: "gvisor", installed: true, usable: true, message: "runsc at /usr/bin/runsc" },
  ],
};

it("explains what is missing per backend and how to fix it", () => {
  const a = explainProbe(probe);
  assert.deepEqual(a.map((x) => [x.subject, x.ok]), [["CRI runtime", true], ["KVM", false], ["vhost_vsock", false], ["kata-qemu", false], ["gvisor", true]]);
  assert.match(a[1]!.fix!, /nested virtualization/);
  assert.match(a[3]!.fix!, /install Kata Containers/);
  assert.equal(a[4]!.fix, undefined);
  const text = formatProbeAdvice(a);
  assert.match(text, /^ok {3}CRI runtime: containerd 1.6.20/m);
  assert.match(text, /^FAIL kata-qemu/m);
});

it("says when there is no CRI runtime at all", () => {
  const a = explainProbe({ ...probe, cri: { kind: "unknown" } });
  assert.equal(a[0]!.ok, false);
  assert.match(a[0]!.fix!, /--cri-socket/);
});
