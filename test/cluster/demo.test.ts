// The local demo end to end (scripts/demo.ts, what `npm run demo` runs after setup): the cluster
// tier's real cluster, the operator installed as pods, runc vs sandboxed kernels, uninstall, nothing left.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

const ROOT = join(import.meta.dirname, "..", "..");

function runDemo(args: string[] = []): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let out = "";
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/demo.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, output: () => out, exited };
}

/** The control plane's temp dir (it holds the kubeconfig the demo prints with --keep). */
const tempDirs = (out: string) => [...new Set(out.match(/\/[\w/.-]*?\/sandbox-operator-cp-[A-Za-z0-9]{6}/g) ?? [])];

/** Processes, mounts and directories that still name one of the demo's temp dirs. */
function leftovers(dirs: string[]): string[] {
  const left: string[] = dirs.filter((d) => existsSync(d)).map((d) => `dir ${d}`);
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // kernel thread or gone
      }
      if (dirs.some((d) => cmd.includes(d) || cwd.startsWith(d))) left.push(`process ${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // exited meanwhile
    }
  }
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mount = line.split(" ")[4] ?? "";
    if (dirs.some((d) => mount.startsWith(d))) left.push(`mount ${mount}`);
  }
  return left;
}

async function waitFor(what: string, out: () => string, re: RegExp, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  void exited.then(() => (done = true));
  while (!re.test(out())) {
    if (done) assert.fail(`demo exited before ${what}:\n${out()}`);
    if (Date.now() > deadline) assert.fail(`no ${what} after ${timeoutMs} ms:\n${out()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("npm run demo (scripts/demo.ts) on this machine", { concurrency: false }, () => {
  it("refuses to run as another user than root, and says so", () => {
    const r = spawnSync("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", process.execPath, "--import", "tsx", "scripts/demo.ts"], { cwd: ROOT, encoding: "utf8", timeout: 60_000, env: { ...process.env, HOME: "/tmp" } });
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /demo: must run as root .*sudo npm run demo/);
    assert.equal(r.stdout, "", "nothing was started");
  });

  it("installs the operator on a real cluster, shows the host kernel under runc and gVisor under sandboxed, uninstalls byte-identical, leaves nothing", async () => {
    const demo = runDemo();
    const timer = setTimeout(() => demo.child.kill("SIGINT"), 420_000);
    const code = await demo.exited;
    clearTimeout(timer);
    const out = demo.output();
    assert.equal(code, 0, `demo failed:\n${out}`);
    assert.match(out, /▶ install: kubectl apply --server-side -f deploy\/sandbox-operator\.yaml/);
    assert.match(out, /sandbox-operator-controller-\S+\s+Running/, "the controller runs as a pod");
    assert.match(out, /▶ kubectl apply -f examples\/sandboxconfig\.yaml/);
    assert.match(out, /NODE\s+BACKEND\s+STATE\s+REASON\s+AGE\n\S+\s+gvisor\s+Ready\s+Verified/, "the sandboxctl status view reaches Ready");
    assert.match(out, /Node \S+: sandboxing\.dev\/agent=true, sandboxing\.dev\/runtime\.gvisor=true, sandboxing\.dev\/runtime\.sandboxed=true/, "the controller labels the node for the agent DaemonSet and the verified handlers");
    const runc = /^\s+runc pod\s+(\S+)/m.exec(out);
    const sandboxed = /^\s+sandboxed pod\s+(\S+)\s+(.*)$/m.exec(out);
    assert.equal(runc?.[1], release(), "runc shows the host kernel");
    assert.ok(sandboxed, `no sandboxed row:\n${out}`);
    assert.notEqual(sandboxed[1], release(), "sandboxed shows another kernel");
    assert.match(sandboxed[2]!, /Starting gVisor/);
    const restored = /containerd config restored: sha256 before ([0-9a-f]{64})\n\s+after\s+([0-9a-f]{64})\s+\(byte-identical\)/.exec(out);
    assert.ok(restored, `no restored-config line:\n${out}`);
    assert.equal(restored[1], restored[2]);
    assert.match(out, /RuntimeClasses left: 0; namespace sandbox-operator-system: gone; Node labels of ours left: none/);
    assert.match(out, /host restored: nothing left/);
    assert.match(out, /done: demo finished/);
    assert.deepEqual(leftovers(tempDirs(out)), []);
  });

  it("--keep serves kubectl and sandboxctl status; Ctrl-C (SIGINT) then stops the cluster and restores the host", async () => {
    const demo = runDemo(["--keep"]);
    try {
      await waitFor("the --keep banner", demo.output, /stop:\s+Ctrl-C here/, demo.exited, 420_000);
      const kubeconfig = /kubeconfig: (\S+)/.exec(demo.output())![1]!;
      const status = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "--kubeconfig", kubeconfig, "status"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
      assert.equal(status.status, 0, status.stderr);
      assert.match(status.stdout, /SandboxConfig cluster: Ready=True \(AllNodesReady\) 1\/1 nodes ready/);
      const kubectl = /kubectl:\s+(\S+)/.exec(demo.output())![1]!;
      const pods = spawnSync(kubectl, ["--kubeconfig", kubeconfig, "get", "pods", "-n", "default", "-o", "name"], { encoding: "utf8", timeout: 60_000 });
      assert.equal(pods.status, 0, pods.stderr);
      assert.match(pods.stdout, /pod\/sandboxed-pod/);
      demo.child.kill("SIGINT");
      assert.equal(await demo.exited, 130);
    } finally {
      if (demo.child.exitCode === null) {
        demo.child.kill("SIGKILL");
        await demo.exited;
      }
    }
    const out = demo.output();
    assert.match(out, /SIGINT: stopping the cluster and restoring the host/);
    assert.match(out, /host restored: nothing left/);
    assert.deepEqual(leftovers(tempDirs(out)), []);
  });
});
