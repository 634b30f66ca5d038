// Node tier on containerd 2.x (built from github.com/containerd/containerd/v2): our own drop-in +
// an `imports` entry, gVisor verified end to end, no restart on equal input, byte-identical revert.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "smol-toml";
import type { Desired } from "../../src/agent/apply.js";
import { CONTAINERD_DROPIN } from "../../src/render/node/layout.js";
import { verifyHandler } from "../../src/agent/verify.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { agentFor, cleanup, hostRoot, longRunningPod } from "./helpers.js";

const desired: Desired = {
  hash: "dddd000000000001",
  handlers: [
    { name: "sandboxed", backend: "gvisor", general: true },
    { name: "gvisor", backend: "gvisor" },
  ],
};

describe("containerd 2.x + runc + gVisor (drop-in path)", { concurrency: false }, () => {
  let root: string;
  let c: Containerd;
  let payload: string;
  let original: Buffer;

  before(async () => {
    root = hostRoot();
    payload = await gvisorPayload("2");
    c = await startContainerd({ version: "2", hostRoot: root });
    original = readFileSync(c.configPath);
  });
  after(async () => {
    await c?.stop();
    cleanup(root, payload);
  });

  it("apply writes the drop-in and one imports entry; gVisor runs, runc stays on the host kernel; running pods survive", async () => {
    const cri = c.cri();
    assert.match((await cri.version()).runtime_version, /^v?2\./);
    const survivor = await longRunningPod(cri, root, "survivor2");
    const agent = agentFor(c, root, payload);
    const out = await agent.apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, true);
    for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, `${h.name}: ${h.message}`);
    const dropIn = join(root, CONTAINERD_DROPIN);
    assert.ok(existsSync(dropIn));
    const cfg = parse(readFileSync(c.configPath, "utf8")) as { imports?: string[]; version: number };
    assert.deepEqual(cfg.imports, [join(root, CONTAINERD_DROPIN)]);
    assert.equal(cfg.version, 3);
    const logDir = { local: join(root, "vl"), runtime: join(root, "vl") };
    const r = await verifyHandler({ cri, handler: "runc", image: TEST_IMAGE, logDir });
    assert.equal(r.ok, true, r.message);
    assert.doesNotMatch(r.dmesg ?? "", /gVisor/);
    assert.equal((await cri.containerStatus(survivor.container)).state, "CONTAINER_RUNNING");
    cri.close();
  });

  it("same input twice: zero restarts", async () => {
    const before = c.restarts();
    const out = await agentFor(c, root, payload).apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, false);
    assert.equal(c.restarts(), before);
  });

  it("broken handler (Kata shim path missing): VerificationFailed with the CRI error, drop-in rolled back, gVisor keeps working", async () => {
    const dropIn = join(root, CONTAINERD_DROPIN);
    const before = readFileSync(dropIn);
    const agent = agentFor(c, root, payload);
    const out = await agent.apply({ hash: "dddd000000000002", handlers: [...desired.handlers, { name: "kata", backend: "kata-qemu" }] });
    assert.equal(out.ok, false);
    assert.equal(out.reason, "VerificationFailed");
    assert.match(out.message, /handler kata: CRI RunPodSandbox/);
    assert.ok(readFileSync(dropIn).equals(before));
    const cri = c.cri();
    const g = await verifyHandler({ cri, handler: "gvisor", image: TEST_IMAGE, logDir: { local: join(root, "vl"), runtime: join(root, "vl") } });
    assert.equal(g.ok, true, g.message);
    cri.close();
  });

  it("revert removes the drop-in and the import; config.toml byte-identical; runc pods run", async () => {
    const out = await agentFor(c, root, payload).revert();
    assert.equal(out.ok, true, out.message);
    assert.ok(readFileSync(c.configPath).equals(original));
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false);
    const cri = c.cri();
    const g = await verifyHandler({ cri, handler: "gvisor", image: TEST_IMAGE, logDir: { local: join(root, "vl"), runtime: join(root, "vl") } });
    assert.match(g.message ?? "", /no runtime for "gvisor" is configured|unknown runtime handler/);
    cri.close();
  });
});
