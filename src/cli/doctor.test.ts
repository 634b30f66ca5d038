// doctor with an injected probe: prints the verdicts, exits 0 when a backend can run and 6 when
// none can, and uses the agent's own explanation when one is given.
import { it } from "node:test";
import assert from "node:assert/strict";
import type { Probe } from "../api/index.js";
import { doctor } from "./doctor.js";
import { EXIT } from "./exit-codes.js";
import type { Io } from "./io.js";

function captureIo(): Io & { text: () => string } {
  let out = "";
  return { isTTY: false, out: (t) => void (out += t), err: () => {}, frame: (t) => void (out += t), text: () => out };
}

const probe = (gvisorUsable: boolean): Probe => ({
  arch: "amd64",
  cri: { kind: "containerd", version: "1.6.20" },
  kvm: { device: true, guestsRun: false },
  vhostVsock: true,
  backends: [
    { backend: "kata-qemu", installed: true, usable: false },
    { backend: "gvisor", installed: true, usable: gvisorUsable },
  ],
});

it("exits 0 and names what can run when a backend is usable", async () => {
  const io = captureIo();
  assert.equal(await doctor({ probe: async () => probe(true) }, { output: "text" }, io), EXIT.ok);
  assert.match(io.text(), /FAIL kata-qemu {2}\/dev\/kvm opens but KVM guests cannot run/);
  assert.match(io.text(), /sandboxes can run here with: gvisor/);
});

it("exits 6 when no backend can run", async () => {
  const io = captureIo();
  assert.equal(await doctor({ probe: async () => probe(false) }, { output: "text" }, io), EXIT.unusable);
  assert.match(io.text(), /no sandbox backend can run here/);
});

it("prints the probe and findings as JSON, with the injected explanation", async () => {
  const io = captureIo();
  const explain = () => [{ backend: "gvisor", ok: true, summary: "from the agent" }];
  await doctor({ probe: async () => probe(true), explain }, { output: "json" }, io);
  const doc = JSON.parse(io.text()) as { probe: Probe; findings: unknown[] };
  assert.deepEqual(doc.findings, explain());
  assert.equal(doc.probe.cri.version, "1.6.20");
});
