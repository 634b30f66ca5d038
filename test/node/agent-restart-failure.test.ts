// A runtime restart that fails, through the real agent process, a real kube-apiserver and a real
// containerd 1.6: the production systemd strategy (nsenter + the host's systemctl, which fails
// here because PID 1 is not systemd) and a restart program that exits non-zero once. The agent
// must roll the files back byte-for-byte, restart on them, report Degraded RuntimeRestartFailed,
// stay alive, retry with backoff, and let a revert (uninstall) finish.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SandboxNode } from "../../src/api/sandboxnode.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { testControlPlane } from "../harness/controlplane.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { cleanup, hostRoot } from "./helpers.js";

type SN = Omit<SandboxNode, "metadata"> & KubeObject;
const MAIN = join(import.meta.dirname, "..", "..", "src", "agent", "main.ts");
const HANDLERS = [{ name: "sandboxed", backend: "gvisor", general: true }, { name: "gvisor", backend: "gvisor" }];

for (const b of ["/usr/bin/nsenter", "/usr/bin/systemctl"]) if (!existsSync(b)) throw new Error(`${b} is missing: apt-get install util-linux systemd`);

describe("a failed runtime restart: Degraded RuntimeRestartFailed, files restored, agent alive, retried", { concurrency: false }, () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let kube: KubeClient;
  let c: Containerd;
  let root: string;
  let payload: string;
  let original: Buffer;
  const agents: ChildProcess[] = [];

  const cond = (o: SN, type: string) => o.status?.conditions?.find((x) => x.type === type);

  function startAgent(node: string, args: string[]): { proc: ChildProcess; log: () => string } {
    let log = "";
    const proc = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "--node-name", node, "--host-root", root, "--kubeconfig", cp.kubeconfigPath, "--cri-socket", c.socket, "--payload-dir", payload, "--config-prefix", root, "--runsc-flag", "network=none", "--verify-image", TEST_IMAGE, "--health-port", "0", "--verify-with", "cri", ...args],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    proc.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    agents.push(proc);
    return { proc, log: () => log };
  }

  async function stop(p: ChildProcess): Promise<void> {
    if (p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
  }

  async function sandboxNode(name: string, hash: string): Promise<void> {
    await kube.delete("SandboxNode", name);
    await kube.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name }, spec: { action: "Apply", proceed: true, desired: { hash, handlers: HANDLERS } } } as KubeObject);
  }

  before(async () => {
    cp = await testControlPlane();
    kube = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(kube);
    root = hostRoot();
    payload = await gvisorPayload("1.6");
    c = await startContainerd({ version: "1.6", hostRoot: root });
    original = readFileSync(c.configPath);
  });
  after(async () => {
    for (const p of agents) await stop(p);
    for (const n of ["restart-fail-systemd", "restart-fail-once"]) await kube?.delete("SandboxNode", n).catch(() => undefined);
    kube?.close();
    await cp?.stop();
    await c?.stop();
    cleanup(root, payload);
  });

  it("systemd strategy on a host whose PID 1 is not systemd: Degraded with systemctl's own words, config.toml byte-identical, agent alive, retried; revert completes", async () => {
    const name = "restart-fail-systemd";
    await sandboxNode(name, "rfail00000000001");
    // This process stands in for the host's PID 1: nsenter enters its namespaces, the host's systemctl answers.
    const a = startAgent(name, ["--restart-strategy", "systemd", "--host-pid", String(process.pid), "--retry-backoff", "1"]);
    const o = await eventually("Degraded RuntimeRestartFailed", async () => {
      const x = await kube.get<SN>("SandboxNode", name);
      return cond(x, "Degraded")?.reason === "RuntimeRestartFailed" && x;
    }, 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${a.log()}`));
    assert.equal(o.status!.phase, "Failed");
    assert.equal(cond(o, "Degraded")!.status, "True");
    assert.equal(cond(o, "Ready")!.status, "False");
    assert.equal(cond(o, "Progressing")!.status, "False");
    assert.equal(o.status!.failedHash, "rfail00000000001");
    assert.equal(o.status!.appliedHash, "");
    const msg = cond(o, "Degraded")!.message;
    assert.match(msg, new RegExp(`^host PID ${process.pid} is not systemd \\(System has not been booted with systemd`), msg);
    assert.match(msg, /restarting containerd on the restored files failed too: host PID \d+ is not systemd/, msg);
    const firstWait = Number(/retrying in (\d+) s$/.exec(msg)?.[1]);
    assert.ok(firstWait >= 1, msg);
    assert.ok(readFileSync(c.configPath).equals(original), "config.toml restored byte-for-byte");
    assert.equal(existsSync(join(root, "opt/sandbox-operator/etc/runsc.toml")), false, "the files the apply created are gone");
    assert.equal(existsSync(join(root, "var/lib/sandbox-operator/journal.json")), false, "the transaction ended");
    // Backoff: 1 s, 2 s, ... each attempt fails again the same way and the process keeps running.
    await eventually("a retry with a longer wait", async () => Number(/retrying in (\d+) s$/.exec(cond(await kube.get<SN>("SandboxNode", name), "Degraded")?.message ?? "")?.[1]) > firstWait, 30_000).catch((e: Error) =>
      assert.fail(`${e.message}\nagent log:\n${a.log()}`),
    );
    assert.equal(a.proc.exitCode, null, `the agent is still running\n${a.log()}`);
    assert.equal(c.restarts(), 0, "containerd itself was never restarted");
    // Uninstall: the controller asks for a revert; nothing of ours is on the node, so it finishes.
    await kube.mergePatch("SandboxNode", name, { spec: { action: "Revert", proceed: true } });
    await eventually("Reverted", async () => (await kube.get<SN>("SandboxNode", name)).status?.phase === "Reverted", 60_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${a.log()}`));
    assert.ok(readFileSync(c.configPath).equals(original));
    await stop(a.proc);
  });

  it("a restart program that exits non-zero once: restored files restarted, Degraded, then the retry applies and verifies", async () => {
    const name = "restart-fail-once";
    const flag = join(root, "fail-next-restart");
    const script = join(root, "restart-or-fail.sh");
    writeFileSync(script, `#!/bin/sh\n# Fails the first restart as a broken unit would, then restarts the test's containerd.\nif [ -e ${flag} ]; then rm -f ${flag}; echo "Job for containerd.service failed because the control process exited with error code." >&2; exit 1; fi\nexec ${c.restartScript}\n`);
    chmodSync(script, 0o755);
    writeFileSync(flag, "");
    await sandboxNode(name, "rfail00000000002");
    const a = startAgent(name, ["--restart-strategy", "command", "--restart-command", script, "--retry-backoff", "3"]);
    const o = await eventually("Degraded RuntimeRestartFailed", async () => {
      const x = await kube.get<SN>("SandboxNode", name);
      return cond(x, "Degraded")?.reason === "RuntimeRestartFailed" && x;
    }, 60_000, 50).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${a.log()}`));
    const msg = cond(o, "Degraded")!.message;
    assert.match(msg, new RegExp(`^restart command "${script}" exited 1: Job for containerd.service failed .*; the previous files were restored byte-for-byte and containerd restarted on them; retrying in 3 s$`), msg);
    assert.equal(c.restarts(), 1, "containerd restarted once, on the restored config");
    assert.ok(readFileSync(c.configPath).equals(original), "config.toml restored byte-for-byte");
    const done = await eventually("the retry applies", async () => {
      const x = await kube.get<SN>("SandboxNode", name);
      return x.status?.phase === "Applied" && x;
    }, 120_000).catch((e: Error) => assert.fail(`${e.message}\nagent log:\n${a.log()}`));
    assert.equal(done.status!.appliedHash, "rfail00000000002");
    assert.equal(done.status!.failedHash, undefined);
    assert.equal(cond(done, "Degraded")!.status, "False");
    assert.deepEqual(done.status!.handlers!.map((h) => [h.name, h.verified]), [["sandboxed", true], ["gvisor", true]]);
    assert.equal(c.restarts(), 2);
    assert.equal(a.proc.exitCode, null);
    await stop(a.proc);
  });
});
