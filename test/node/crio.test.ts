// Node tier on CRI-O (1.34.0 built from its Go module, Debian's conmon and runc): our own drop-in in
// crio.conf.d, gVisor verified end to end through CRI-O's CRI socket, no restart on equal input,
// byte-identical revert.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Desired } from "../../src/agent/apply.js";
import { verifyHandler } from "../../src/agent/verify.js";
import { renderCrioDropIn } from "../../src/render/node/crio-dropin.js";
import { CRIO_DROPIN } from "../../src/render/node/layout.js";
import { CRIO_BASE_DROPIN, startCrio, type Crio } from "../harness/crio.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { agentFor, cleanup, hostRoot, longRunningPod } from "./helpers.js";

const desired: Desired = {
  hash: "c410000000000001",
  handlers: [
    { name: "sandboxed", backend: "gvisor", general: true },
    { name: "gvisor", backend: "gvisor" },
  ],
};

/** Every path under `root` with its type, and each file's bytes (the host root as a tree). */
function tree(root: string, skip: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const rel = relative(root, p);
      if (skip.some((s) => rel === s || rel.startsWith(`${s}/`))) continue;
      const st = statSync(p);
      if (st.isDirectory()) {
        out.set(`${rel}/`, "dir");
        walk(p);
      } else out.set(rel, readFileSync(p).toString("base64"));
    }
  };
  walk(root);
  return out;
}

describe("CRI-O + runc + gVisor (drop-in in crio.conf.d)", { concurrency: false }, () => {
  let root: string;
  let c: Crio;
  let payload: string;
  let original: Map<string, string>;
  // Pod logs the tests themselves write, and the agent's own state dir (its lock, state.json; docs/uninstall.md).
  const volatile = ["podlogs", "vl", "var/lib/sandbox-operator"];
  const logs = () => ({ local: join(root, "vl"), runtime: join(root, "vl") });
  const hostKernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();

  before(async () => {
    root = hostRoot();
    // The directories every host has, so whatever the agent adds under them is its own.
    for (const d of ["opt", "var/lib", "var/log"]) mkdirSync(join(root, d), { recursive: true });
    payload = await gvisorPayload("crio");
    c = await startCrio({ hostRoot: root });
    original = tree(root, volatile);
  });
  after(async () => {
    await c?.stop();
    cleanup(root, payload);
  });

  it("apply writes only our drop-in; sandboxed and gvisor run under gVisor through CRI-O, runc on the host kernel; a running pod survives the restart", async () => {
    const cri = c.cri();
    const v = await cri.version();
    assert.equal(v.runtime_name, "cri-o");
    assert.match(v.runtime_version, /^1\.34\./);
    const survivor = await longRunningPod(cri, root, "survivor-crio", "");
    const out = await agentFor(c, root, payload).apply(desired);
    assert.equal(out.ok, true, `${out.message}\n--- crio.log (tail) ---\n${c.log().split("\n").slice(-40).join("\n")}`);
    assert.equal(out.restarted, true);
    assert.equal(c.restarts(), 1);
    for (const h of out.handlers) {
      assert.equal(h.verified, true, `${h.name}: ${h.message}`);
      assert.match(h.kernel ?? "", /gVisor/, `${h.name} ran under gVisor`);
    }
    // Our bytes, in CRI-O's drop-in dir after the package's own 10-crio.conf, which is untouched.
    const dropIn = readFileSync(join(root, CRIO_DROPIN), "utf8");
    assert.match(dropIn, /^# CRI runtimes of sandbox-operator/);
    assert.deepEqual(readdirSync(c.configDir).sort(), ["10-crio.conf", "50-sandbox-operator.conf"]);
    assert.equal(readFileSync(join(root, CRIO_BASE_DROPIN)).toString("base64"), original.get(CRIO_BASE_DROPIN.slice(1)));
    assert.equal(dropIn, renderCrioDropIn(desired.handlers, { layout: agentLayout(root) }));
    // CRI-O itself lists the handlers it loaded from the drop-in.
    const handlers = ((await cri.statusVerbose()).runtime_handlers ?? []).map((h) => h.name);
    for (const h of ["sandboxed", "gvisor"]) assert.ok(handlers.includes(h), `CRI-O lists ${h} (it lists ${handlers.join(", ")})`);
    // Through CRI directly: gVisor's kernel log under both handlers, the host kernel under runc (CRI-O's default).
    for (const h of ["sandboxed", "gvisor"]) {
      const g = await verifyHandler({ cri, handler: h, image: TEST_IMAGE, logDir: logs() });
      assert.equal(g.ok, true, g.message);
      assert.match(g.dmesg ?? "", /Starting gVisor/, `${h}: dmesg`);
      assert.notEqual(g.kernel, hostKernel);
    }
    const r = await verifyHandler({ cri, handler: "", image: TEST_IMAGE, logDir: logs() });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.kernel, hostKernel);
    assert.doesNotMatch(r.dmesg ?? "", /gVisor/);
    assert.equal((await cri.containerStatus(survivor.container)).state, "CONTAINER_RUNNING", "a pod started before the apply still runs after CRI-O restarted");
    await cri.stopPodSandbox(survivor.pod);
    await cri.removePodSandbox(survivor.pod);
    cri.close();
  });

  it("same input twice: no write, zero restarts", async () => {
    const before = c.restarts();
    const bytes = readFileSync(join(root, CRIO_DROPIN));
    const out = await agentFor(c, root, payload).apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, false);
    assert.equal(c.restarts(), before);
    assert.ok(readFileSync(join(root, CRIO_DROPIN)).equals(bytes));
  });

  it("a handler CRI-O cannot load (Kata shim missing): CRI-O ignores it, VerificationFailed with CRI-O's error, drop-in rolled back and CRI-O restarted on it, gVisor keeps working", async () => {
    const dropIn = join(root, CRIO_DROPIN);
    const before = readFileSync(dropIn);
    const restarts = c.restarts();
    const out = await agentFor(c, root, payload).apply({ hash: "c410000000000002", handlers: [...desired.handlers, { name: "kata", backend: "kata-qemu" }] });
    assert.equal(out.ok, false);
    assert.equal(out.reason, "VerificationFailed", out.message);
    assert.match(out.message, /handler kata: CRI RunPodSandbox: UNKNOWN: failed to find runtime handler kata from runtime list/);
    assert.match(c.log(), /Runtime handler \\"kata\\" is being ignored due to: invalid runtime_path for runtime 'kata'/);
    assert.ok(readFileSync(dropIn).equals(before));
    assert.equal(existsSync(join(root, "opt/sandbox-operator/etc/kata/configuration-kata.toml")), false, "the Kata file of the failed apply is gone");
    assert.equal(c.restarts(), restarts + 2, "restarted on the new files, then on the restored ones");
    const cri = c.cri();
    const g = await verifyHandler({ cri, handler: "gvisor", image: TEST_IMAGE, logDir: logs() });
    assert.equal(g.ok, true, g.message);
    cri.close();
  });

  it("revert: drop-in gone, host root as before (no file or empty directory of ours left), CRI-O restarted and serving plain pods, gvisor unknown", async () => {
    const before = c.restarts();
    const out = await agentFor(c, root, payload).revert();
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, true);
    assert.equal(c.restarts(), before + 1);
    assert.equal(existsSync(join(root, CRIO_DROPIN)), false);
    assert.deepEqual([...tree(root, volatile).keys()].sort(), [...original.keys()].sort());
    assert.deepEqual(tree(root, volatile), original);
    const cri = c.cri();
    const r = await verifyHandler({ cri, handler: "", image: TEST_IMAGE, logDir: logs() });
    assert.equal(r.ok, true, r.message);
    const g = await verifyHandler({ cri, handler: "gvisor", image: TEST_IMAGE, logDir: logs() });
    assert.equal(g.ok, false);
    assert.match(g.message ?? "", /failed to find runtime handler gvisor from runtime list/);
    const handlers = ((await cri.statusVerbose()).runtime_handlers ?? []).map((h) => h.name);
    assert.ok(!handlers.includes("gvisor") && !handlers.includes("sandboxed"), `CRI-O no longer lists our handlers (it lists ${handlers.join(", ")})`);
    cri.close();
  });
});

/** The layout the agent renders with under this host root (its paths prefixed, as CRI-O sees them). */
function agentLayout(root: string) {
  const p = (x: string) => join(root, x);
  return { installDir: p("/opt/sandbox-operator"), kataDir: p("/opt/kata"), runsc: p("/opt/sandbox-operator/bin/runsc"), gvisorShim: p("/opt/sandbox-operator/bin/containerd-shim-runsc-v1"), kataShim: p("/opt/kata/bin/containerd-shim-kata-v2"), runscFlags: { network: "none" } };
}
