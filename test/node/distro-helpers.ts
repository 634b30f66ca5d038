// Runs one distribution's layout on a real containerd under a temp host root: the agent finds it in
// /proc, applies (gVisor verified), survives a restart that regenerates the config, reverts byte-identically.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { NodeAgent } from "../../src/agent/apply.js";
import { commandRestarter } from "../../src/agent/restart.js";
import { verifyHandler } from "../../src/agent/verify.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { cleanup, hostRoot, RUNSC_FLAGS } from "./helpers.js";

export const HANDLERS = [{ name: "sandboxed", backend: "gvisor" as const, general: true }, { name: "gvisor", backend: "gvisor" as const }];
/** This machine's CRI needs (no CAP_SYS_RESOURCE, no AppArmor); a real node's config would not have them. */
export const ENV_KEYS = "  restrict_oom_score_adj = true\n  disable_apparmor = true\n";

/** The shell line a test containerd's start runs first: the named stand-in (test/harness/distro-stand-ins.ts). */
export function standIn(...args: string[]): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `(cd ${q(repoRoot())} && ${q(process.execPath)} --import tsx test/harness/distro-stand-ins.ts ${args.map(q).join(" ")})`;
}

export interface Ctx {
  root: string;
  /** containerd's opt plugin directory, outside the host root (so the root holds only the node's files). */
  opt: string;
  /** Host path -> path under the root. */
  at: (hostPath: string) => string;
  write: (hostPath: string, text: string) => void;
}

export interface Shape {
  name: string;
  version: "1.6" | "2";
  /** containerd's --config and --address (host paths). */
  config: string;
  socket: string;
  /** Writes the node's files before containerd first starts. */
  setup(ctx: Ctx): void;
  /** The distribution's start step (a stand-in), run before every containerd start. */
  generate?(ctx: Ctx): string;
  /** What the probe must report: status.probe.cri.layout starts with "<distribution>: <method> <target>". */
  layout: { distribution: string; method: string; target: string; why: RegExp };
  /** Extra checks once applied (the files as the distribution left them after a restart). */
  applied?(ctx: Ctx, c: Containerd): void | Promise<void>;
  /** A second containerd (Docker's) and a kubelet stand-in pointing at this one. */
  dockerBeside?: boolean;
  /** The runtime's default runtime cannot run a plain pod here (SystemdCgroup = true without systemd): the revert's check says so. */
  plainPodFails?: RegExp;
}

/** Every regular file (bytes) and directory under root, sockets left out. */
export function snapshot(root: string): { files: Map<string, Buffer>; dirs: string[] } {
  const files = new Map<string, Buffer>();
  const dirs: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        dirs.push(relative(root, p));
        walk(p);
      } else if (st.isFile()) files.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return { files, dirs: dirs.sort() };
}

function assertSame(before: ReturnType<typeof snapshot>, now: ReturnType<typeof snapshot>): void {
  assert.deepEqual([...now.files.keys()].sort(), [...before.files.keys()].sort(), "the same files as before the apply");
  assert.deepEqual(now.dirs, before.dirs, "the same directories as before the apply: none of ours left behind");
  for (const [p, b] of before.files) assert.ok(now.files.get(p)!.equals(b), `${p} is byte-identical to before the apply`);
}

/** A process whose command line is a kubelet's (argv[0] "kubelet", --container-runtime-endpoint), for discovery. */
function kubeletStandIn(endpoint: string): ChildProcess {
  return spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)", "kubelet-stand-in", "--container-runtime-endpoint", endpoint], { argv0: "kubelet", stdio: "ignore" });
}

export function runShape(s: Shape): void {
  describe(s.name, { concurrency: false }, () => {
    let ctx: Ctx;
    let c: Containerd;
    let docker: Containerd | undefined;
    let kubelet: ChildProcess | undefined;
    let payload: string;
    let agent: NodeAgent;
    let before0: ReturnType<typeof snapshot>;
    let logs: string;
    const logDir = () => ({ local: logs, runtime: logs });

    before(async () => {
      const root = hostRoot();
      const opt = mkdtempSync(join(tmpdir(), "sandbox-operator-opt-"));
      logs = mkdtempSync(join(tmpdir(), "sandbox-operator-vl-"));
      const at = (p: string) => join(root, p);
      ctx = { root, opt, at, write: (p, text) => (mkdirSync(dirname(at(p)), { recursive: true }), writeFileSync(at(p), text)) };
      // Directories every host has: what the agent creates beside them is what it must remove again.
      for (const d of ["/var/lib", "/var/log", "/opt", "/etc", "/run"]) mkdirSync(at(d), { recursive: true });
      payload = await gvisorPayload(s.version);
      if (s.dockerBeside) {
        // Docker's containerd on the default socket, with the default config path: not the kubelet's.
        docker = await startContainerd({ version: "1.6", hostRoot: root, socket: at("/run/containerd/containerd.sock"), images: false });
      }
      s.setup(ctx);
      c = await startContainerd({ version: s.version, hostRoot: root, hostConfigPath: s.config, socket: at(s.socket), config: null, generate: s.generate?.(ctx) });
      if (s.dockerBeside) kubelet = kubeletStandIn(`unix://${at(s.socket)}`);
      before0 = snapshot(root);
      // What the DaemonSet runs with: no --cri-socket, no --containerd-config, no --runtime-unit.
      agent = new NodeAgent({ hostRoot: root, payloadDir: payload, restarter: commandRestarter(c.restartScript), configPrefix: root, runscFlags: RUNSC_FLAGS, verifyImage: TEST_IMAGE, log: pino({ level: process.env.AGENT_LOG ?? "warn" }) });
    });
    after(async () => {
      kubelet?.kill("SIGKILL");
      await c?.stop();
      await docker?.stop();
      cleanup(ctx.root, ctx.opt, logs, payload);
    });

    it(`the probe finds this containerd and reports the ${s.layout.distribution} layout (${s.layout.method})`, async () => {
      const p = await agent.probe();
      assert.equal(p.cri.kind, "containerd");
      assert.equal(p.cri.socket, c.socket, p.cri.source);
      assert.equal(p.cri.configPath, s.config);
      if (s.dockerBeside) assert.match(p.cri.source ?? "", /serves the kubelet's endpoint unix:\/\//, "the kubelet's containerd, not Docker's on the default socket");
      const want = `${s.layout.distribution}: ${s.layout.method} ${s.layout.target} (`;
      assert.ok(p.cri.layout?.startsWith(want), `layout ${p.cri.layout} starts with ${want}`);
      assert.match(p.cri.layout ?? "", s.layout.why);
    });

    it("apply: sandboxed and gvisor verified under gVisor; the config containerd loaded is the one we meant", async () => {
      const out = await agent.apply({ hash: "distro01", handlers: HANDLERS });
      assert.equal(out.ok, true, `${out.message}\n--- containerd.log ---\n${c.log().split("\n").slice(-15).join("\n")}`);
      assert.deepEqual(out.handlers.map((h) => [h.name, h.verified]), [["sandboxed", true], ["gvisor", true]]);
      for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, h.name);
      assert.ok(out.changed.includes(ctx.at(s.layout.target)), `${s.layout.target} written (changed: ${out.changed.join(", ")})`);
      await s.applied?.(ctx, c);
      if (docker) assert.equal(docker.restarts(), 0, "Docker's containerd was not restarted");
    });

    it("a restart that regenerates the config keeps the handlers (the distribution's own start step)", async () => {
      const restarts = c.restarts();
      await c.restart();
      assert.equal(c.restarts(), restarts + 1);
      const cri = c.cri();
      try {
        const g = await verifyHandler({ cri, handler: "sandboxed", image: TEST_IMAGE, logDir: logDir() });
        assert.equal(g.ok, true, g.message);
        assert.match(g.dmesg ?? "", /gVisor/);
      } finally {
        cri.close();
      }
      const again = await agent.apply({ hash: "distro01", handlers: HANDLERS });
      assert.deepEqual(again.changed, [], "nothing to rewrite after the regeneration");
    });

    it("revert: every file byte-identical to before, no directory of ours left, gVisor handler gone", async () => {
      const out = await agent.revert();
      if (s.plainPodFails && !out.ok) assert.match(out.message, s.plainPodFails);
      else assert.equal(out.ok, true, out.message);
      await c.restart();
      assertSame(before0, snapshot(ctx.root));
      const cri = c.cri();
      try {
        const g = await verifyHandler({ cri, handler: "sandboxed", image: TEST_IMAGE, logDir: logDir() });
        assert.match(g.message ?? "", /no runtime for "sandboxed" is configured|unknown runtime handler/);
      } finally {
        cri.close();
      }
    });
  });
}
