// Node tier on Debian's containerd 1.6 with runc and gVisor: apply/verify on the Debian default
// config, idempotence, running pods surviving the restart, rollback of a broken handler, a crash
// between write and restart, byte-for-byte revert, and a host without config.toml.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { Desired } from "../../src/agent/apply.js";
import { waitCriReady } from "../../src/agent/cri/client.js";
import { VERIFY_LABEL, verifyHandler } from "../../src/agent/verify.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { agentFor, cleanup, hostRoot, longRunningPod } from "./helpers.js";

const run = promisify(execFile);
const desired: Desired = {
  hash: "aaaa000000000001",
  handlers: [
    { name: "sandboxed", backend: "gvisor", general: true },
    { name: "gvisor", backend: "gvisor" },
  ],
};

describe("containerd 1.6 (Debian) + runc + gVisor", { concurrency: false }, () => {
  let root: string;
  let c: Containerd;
  let payload: string;
  let original: Buffer;
  const logs = () => ({ local: join(root, "verify-logs"), runtime: join(root, "verify-logs") });

  before(async () => {
    root = hostRoot();
    payload = await gvisorPayload("1.6");
    c = await startContainerd({ version: "1.6", hostRoot: root });
    original = readFileSync(c.configPath);
  });
  after(async () => {
    await c?.stop();
    cleanup(root, payload);
  });

  it("apply: sandboxed and gvisor run under gVisor, runc on the host kernel; a running pod survives the restart", async () => {
    const cri = c.cri();
    const before = await longRunningPod(cri, root, "survivor");
    const agent = agentFor(c, root, payload);
    const out = await agent.apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, true);
    assert.equal(c.restarts(), 1);
    for (const h of out.handlers) {
      assert.equal(h.verified, true, `${h.name}: ${h.message}`);
      assert.match(h.kernel!, /gVisor/, `${h.name} ran under gVisor`);
    }
    // Through CRI directly: the general handler shows gVisor's kernel log, runc the host's kernel.
    const g = await verifyHandler({ cri, handler: "sandboxed", image: TEST_IMAGE, logDir: logs() });
    assert.match(g.dmesg!, /Starting gVisor/);
    const r = await verifyHandler({ cri, handler: "runc", image: TEST_IMAGE, logDir: logs() });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.kernel, readFileSync("/proc/sys/kernel/osrelease", "utf8").trim());
    assert.notEqual(g.kernel, r.kernel);
    const st = await cri.containerStatus(before.container);
    assert.equal(st.state, "CONTAINER_RUNNING", "a pod started before the apply still runs after containerd restarted");
    // The original bytes are all still there; our block follows them.
    const now = readFileSync(c.configPath);
    assert.ok(now.subarray(0, original.length).equals(original));
    assert.ok(existsSync(join(root, "opt/sandbox-operator/bin/runsc")));
    cri.close();
  });

  it("same input twice: nothing written, zero restarts", async () => {
    const agent = agentFor(c, root, payload);
    const before = c.restarts();
    const out = await agent.apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.deepEqual(out.changed, []);
    assert.equal(out.restarted, false);
    assert.equal(c.restarts(), before);
  });

  it("broken handler: verification fails, files roll back, Degraded with the CRI error, runc unaffected", async () => {
    const broken = mkdtempSync(join(tmpdir(), "sandbox-operator-broken-"));
    symlinkSync(join(payload, "runsc"), join(broken, "runsc"));
    writeFileSync(join(broken, "containerd-shim-runsc-v1"), "#!/bin/sh\necho 'shim missing its runtime' >&2\nexit 1\n");
    chmodSync(join(broken, "containerd-shim-runsc-v1"), 0o755);
    const beforeCfg = readFileSync(c.configPath);
    const beforeShim = readFileSync(join(root, "opt/sandbox-operator/bin/containerd-shim-runsc-v1"));
    const agent = agentFor(c, root, broken);
    const out = await agent.apply({ hash: "bbbb000000000002", handlers: [...desired.handlers, { name: "gvisor-big", backend: "gvisor" }] });
    assert.equal(out.ok, false);
    assert.equal(out.reason, "VerificationFailed");
    assert.match(out.message, /CRI RunPodSandbox/);
    assert.ok(readFileSync(c.configPath).equals(beforeCfg), "config.toml rolled back byte-for-byte");
    assert.ok(readFileSync(join(root, "opt/sandbox-operator/bin/containerd-shim-runsc-v1")).equals(beforeShim), "shim rolled back");
    assert.equal(agent.state.journal(), null);
    assert.equal(agent.state.state()!.appliedHash, desired.hash, "the node still runs the previous verified hash");
    const cri = c.cri();
    const r = await verifyHandler({ cri, handler: "runc", image: TEST_IMAGE, logDir: logs() });
    assert.equal(r.ok, true, r.message);
    const g = await verifyHandler({ cri, handler: "gvisor", image: TEST_IMAGE, logDir: logs() });
    assert.equal(g.ok, true, `the previous gVisor config works again: ${g.message}`);
    cri.close();
    rmSync(broken, { recursive: true, force: true });
  });

  /** Runs one apply in a child process that SIGKILLs itself at `fault`; returns how it ended. */
  async function crashAt(fault: string, next: Desired | null): Promise<string | null> {
    const input = join(root, `fault-${fault}.json`);
    writeFileSync(input, JSON.stringify({ socket: c.socket, root, payload, restart: c.restartScript, desired: next, op: next ? "apply" : "revert" }));
    const child = await run(process.execPath, ["--import", "tsx", join(import.meta.dirname, "fixtures", "apply-once.ts"), input], { env: { ...process.env, SANDBOX_AGENT_FAULT: fault } }).then(
      () => ({ signal: null as string | null }),
      (e: { signal: string | null }) => ({ signal: e.signal }),
    );
    return child.signal;
  }

  // Each case: the agent dies at a named step; the next start rolls back to the last verified
  // state (restarting the runtime only if the dead agent had restarted it), then applies again.
  const cases = [
    { fault: "mid-write", step: "prepared", restartsDuring: 0, restartsToRecover: 0 },
    { fault: "after-write", step: "written", restartsDuring: 0, restartsToRecover: 0 },
    { fault: "after-restart", step: "restarted", restartsDuring: 1, restartsToRecover: 1 },
  ];
  for (const [i, k] of cases.entries()) {
    it(`agent killed at ${k.fault}: the next start rolls back, then the apply completes`, async () => {
      const name = `gvisor-crash-${i}`;
      const next: Desired = { hash: `cccc00000000000${i}`, handlers: [...desired.handlers, { name, backend: "gvisor" }] };
      const verified = readFileSync(c.configPath);
      const r0 = c.restarts();
      assert.equal(await crashAt(k.fault, next), "SIGKILL", "the agent died at the fault point");
      assert.equal(c.restarts(), r0 + k.restartsDuring);
      const agent = agentFor(c, root, payload);
      assert.equal(agent.state.journal()?.step, k.step, "the journal shows where it stopped");
      if (k.fault !== "mid-write") assert.match(readFileSync(c.configPath, "utf8"), new RegExp(name), "the new config was on disk");
      const recovered = await agent.startup();
      assert.match(recovered!, /rolled back an interrupted apply/);
      assert.ok(readFileSync(c.configPath).equals(verified), "config.toml is the last verified one again");
      assert.equal(c.restarts(), r0 + k.restartsDuring + k.restartsToRecover);
      assert.equal(agent.state.journal(), null);
      const out = await agent.apply(next);
      assert.equal(out.ok, true, out.message);
      assert.equal(agent.state.state()!.appliedHash, next.hash);
    });
  }

  it("agent killed in the middle of a revert: the next start puts the applied config back, a new revert finishes", async () => {
    const applied = readFileSync(c.configPath);
    const hash = agentFor(c, root, payload).state.state()!.appliedHash;
    assert.equal(await crashAt("after-write", null), "SIGKILL");
    assert.ok(readFileSync(c.configPath).equals(original), "the dead revert had written the original back");
    const agent = agentFor(c, root, payload);
    assert.match((await agent.startup())!, /rolled back an interrupted revert/);
    assert.ok(readFileSync(c.configPath).equals(applied));
    assert.equal(agent.state.state()!.appliedHash, hash, "the node still records what it runs");
  });

  it("a verification sandbox a killed agent left outside any transaction (a drift check's) is removed at the next start", async () => {
    const cri = c.cri();
    try {
      const left = await cri.runPodSandbox({ metadata: { name: "verify-left", uid: "verify-left", namespace: "sandbox-operator-verify", attempt: 0 }, hostname: "", log_directory: join(root, "podlogs", "verify-left"), labels: { [VERIFY_LABEL]: "true" }, linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } } }, "runc");
      const other = await longRunningPod(cri, root, "not-ours");
      const agent = agentFor(c, root, payload);
      assert.equal(agent.state.journal(), null, "no transaction to recover");
      assert.equal(await agent.startup(), null);
      const ids = (await cri.listPodSandbox({})).map((p) => p.id);
      assert.ok(!ids.includes(left), "the verification sandbox is gone");
      assert.ok(ids.includes(other.pod), "a sandbox without the label is left alone");
      await cri.stopPodSandbox(other.pod);
      await cri.removePodSandbox(other.pod);
    } finally {
      cri.close();
    }
  });

  it("revert: config.toml byte-identical, our files gone, plain runc pods run", async () => {
    const agent = agentFor(c, root, payload);
    const out = await agent.revert();
    assert.equal(out.ok, true, out.message);
    assert.ok(readFileSync(c.configPath).equals(original), "config.toml is the original, byte for byte");
    for (const p of ["opt/sandbox-operator/bin/runsc", "opt/sandbox-operator/bin/containerd-shim-runsc-v1", "opt/sandbox-operator/etc/runsc.toml"]) {
      assert.equal(existsSync(join(root, p)), false, `${p} removed`);
    }
    assert.equal(agent.state.state(), null);
    const cri = c.cri();
    const r = await verifyHandler({ cri, handler: "runc", image: TEST_IMAGE, logDir: logs() });
    assert.equal(r.ok, true, r.message);
    const g = await verifyHandler({ cri, handler: "gvisor", image: TEST_IMAGE, logDir: logs() });
    assert.match(g.message!, /no runtime for "gvisor" is configured/);
    cri.close();
  });

  it("no config.toml: apply starts from containerd's defaults, revert removes the file again", async () => {
    rmSync(c.configPath);
    await c.restart();
    // The host's `containerd config default`, adjusted for this machine (no CAP_SYS_RESOURCE, no AppArmor).
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    writeFileSync(
      join(root, "usr/bin/containerd"),
      `#!/bin/sh\n/usr/bin/containerd "$@" | sed -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' -e 's/disable_apparmor = false/disable_apparmor = true/' -e 's#"/opt/containerd"#"${c.dir}/opt"#'\n`,
    );
    chmodSync(join(root, "usr/bin/containerd"), 0o755);
    const agent = agentFor(c, root, payload);
    const out = await agent.apply(desired);
    assert.equal(out.ok, true, out.message);
    const cfg = readFileSync(c.configPath, "utf8");
    assert.match(cfg, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\]/, "containerd's defaults were written first");
    const rev = await agent.revert();
    assert.equal(existsSync(c.configPath), false, "the config.toml we created is gone");
    await waitCriReady(c.socket, 10_000);
    // Without config.toml containerd uses its built-in defaults, which on this machine cannot lower
    // OOM scores; a real host runs the plain pod. Either way containerd itself is up and serving CRI.
    if (!rev.ok) assert.match(rev.message, /oom|OOM|final child/);
    rmSync(join(root, "usr/bin/containerd"));
  });
});
