// The MachineConfig path on a CRI-O node: the MachineConfig the controller renders for a
// SandboxConfig with gVisor is applied to a fresh host root by Ignition's own files stage, CRI-O
// starts from the files it wrote, and gVisor runs through CRI-O; the bytes are the agent's.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Backend, SandboxConfigSpec } from "../../src/api/index.js";
import type { Desired } from "../../src/agent/apply.js";
import { verifyHandler } from "../../src/agent/verify.js";
import { machineConfigContent, machineConfigHandlers, RHCOS_LAYOUT } from "../../src/controller/desired-machineconfig.js";
import { decodeDataUrl, renderMachineConfig, type MachineConfig } from "../../src/openshift/render-machineconfig.js";
import { CRIO_DROPIN, defaultLayout, type Layout } from "../../src/render/node/layout.js";
import { CRIO_BASE_DROPIN, startCrio, type Crio } from "../harness/crio.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { ignitionApply } from "../harness/ignition-apply.js";
import { TEST_IMAGE } from "../harness/images.js";
import { agentFor, cleanup, hostRoot, RUNSC_FLAGS } from "./helpers.js";

/** An admin's SandboxConfig allowing Kata and gVisor, gVisor first: `sandboxed` maps to gVisor. */
const spec: SandboxConfigSpec = { nodeSelector: {}, runtimes: { allowed: ["kata-qemu", "gvisor"], preferred: ["gvisor"] } } as SandboxConfigSpec;
/** What every node of the pool has: the RHCOS extension's Kata (QEMU) and runsc with its shim. */
const BACKENDS: readonly Backend[] = ["kata-qemu", "gvisor"];
/** Ignition's record of its run, which it writes under the root on every files stage. */
const IGNITION_RESULT = "etc/.ignition-result.json";

/**
 * A layout as this machine's CRI-O sees it under a host root: CRI-O runs here, not chrooted, so the
 * paths written into its config carry the root in front (the agent's --config-prefix does the same
 * on the DaemonSet path). On a real node the runtime layout is the node layout.
 */
const prefixed = (l: Layout, root: string): Layout => ({
  ...l,
  installDir: join(root, l.installDir),
  kataDir: join(root, l.kataDir),
  runsc: join(root, l.runsc),
  gvisorShim: join(root, l.gvisorShim),
  kataShim: join(root, l.kataShim),
  runscFlags: { ...RUNSC_FLAGS },
});

/** Every file under `root` (relative path -> bytes), skipping `skip` subtrees. */
function files(root: string, skip: string[] = []): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const rel = relative(root, p);
      if (skip.some((s) => rel === s || rel.startsWith(`${s}/`))) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out.set(rel, readFileSync(p));
    }
  };
  walk(root);
  return out;
}

describe("MachineConfig on CRI-O: Ignition's files stage writes the node's files, CRI-O runs gVisor from them", { concurrency: false }, () => {
  let root: string;
  let c: Crio | undefined;
  let payload: string;
  let mc: MachineConfig;
  let ignitionLog = "";
  const hostKernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const logs = () => ({ local: join(root, "vl"), runtime: join(root, "vl") });

  before(async () => {
    root = hostRoot();
    payload = await gvisorPayload("crio");
    mc = renderMachineConfig("sandboxed", machineConfigContent(spec, { backends: BACKENDS, runtimeLayout: prefixed(RHCOS_LAYOUT, root) }));
    ignitionLog = (await ignitionApply(mc, root)).log;
  });
  after(async () => {
    await c?.stop();
    cleanup(root, payload);
  });

  it("Ignition writes exactly the MachineConfig's files under the root, byte for byte, 0644, and nothing on this machine", () => {
    assert.match(ignitionLog, /files passed/, ignitionLog);
    const wanted = mc.spec.config.storage.files;
    assert.ok(wanted.some((f) => f.path === RHCOS_LAYOUT.installDir + "/etc/runsc.toml"), "the MachineConfig carries runsc.toml");
    const written = files(root);
    assert.deepEqual([...written.keys()].sort(), [...wanted.map((f) => f.path.slice(1)), IGNITION_RESULT].sort());
    for (const f of wanted) {
      assert.ok(written.get(f.path.slice(1))!.equals(Buffer.from(decodeDataUrl(f.contents.source))), `${f.path}: Ignition wrote the MachineConfig's bytes`);
      assert.equal(statSync(join(root, f.path)).mode & 0o7777, f.mode, `${f.path}: mode`);
    }
    // The run happened in a mount namespace where all else was read-only; these are Ignition's defaults outside --root.
    for (const p of ["/run/ignition.json", "/run/ignition/state", "/etc/.ignition-result.json", "/etc/sandbox-operator", CRIO_DROPIN]) {
      assert.equal(existsSync(p), false, `${p} must not exist on this machine`);
    }
  });

  it("CRI-O starts from those files and lists every handler; sandboxed and gvisor run under gVisor, the default runtime on the host kernel", async () => {
    // Stand-in for what installs the binaries on such a node (nothing on RHCOS ships runsc): runsc
    // and its shim at the layout's paths; an executable in place of the extension's Kata shim, which
    // CRI-O only checks exists (no Kata VM boots on these machines).
    for (const [from, to] of [
      [join(payload, "runsc"), RHCOS_LAYOUT.runsc],
      [join(payload, "containerd-shim-runsc-v1"), RHCOS_LAYOUT.gvisorShim],
    ] as const) {
      mkdirSync(dirname(join(root, to)), { recursive: true });
      copyFileSync(from, join(root, to));
      chmodSync(join(root, to), 0o755);
    }
    mkdirSync(dirname(join(root, RHCOS_LAYOUT.kataShim)), { recursive: true });
    writeFileSync(join(root, RHCOS_LAYOUT.kataShim), "#!/bin/sh\necho 'stand-in for the RHCOS extension Kata shim' >&2\nexit 1\n", { mode: 0o755 });
    const before = readdirSync(join(root, "etc/crio/crio.conf.d"));
    c = await startCrio({ hostRoot: root });
    assert.deepEqual(before, ["50-sandbox-operator.conf"], "the drop-in was there before CRI-O's base config");
    assert.deepEqual(readdirSync(c.configDir).sort(), [CRIO_BASE_DROPIN.split("/").pop(), "50-sandbox-operator.conf"]);
    const cri = c.cri();
    try {
      const handlers = ((await cri.statusVerbose()).runtime_handlers ?? []).map((h) => h.name);
      for (const h of ["sandboxed", "gvisor", "kata"]) assert.ok(handlers.includes(h), `CRI-O loaded ${h} from the MachineConfig's drop-in (it lists ${handlers.join(", ")})\n${c.log().split("\n").slice(-30).join("\n")}`);
      assert.doesNotMatch(c.log(), /Runtime handler \\"(sandboxed|gvisor|kata)\\" is being ignored/, "CRI-O accepted every runtime of the drop-in");
      for (const h of ["sandboxed", "gvisor"]) {
        const g = await verifyHandler({ cri, handler: h, image: TEST_IMAGE, logDir: logs() });
        assert.equal(g.ok, true, `${h}: ${g.message}\n--- crio.log (tail) ---\n${c.log().split("\n").slice(-40).join("\n")}`);
        assert.match(g.dmesg ?? "", /Starting gVisor/, `${h}: dmesg`);
        assert.notEqual(g.kernel, hostKernel, `${h}: not the host kernel`);
      }
      const r = await verifyHandler({ cri, handler: "", image: TEST_IMAGE, logDir: logs() });
      assert.equal(r.ok, true, r.message);
      assert.equal(r.kernel, hostKernel);
      assert.doesNotMatch(r.dmesg ?? "", /gVisor/);
    } finally {
      cri.close();
    }
  });

  it("one renderer: for the same handlers and layout, the MachineConfig's files are the bytes the agent (DaemonSet path) would write", async () => {
    // The agent writes under /opt/sandbox-operator, which the MCO cannot write; so both sides are
    // rendered for the agent's layout here, by the function whose RHCOS-layout output Ignition applied above.
    assert.ok(c, "CRI-O runs (previous test)");
    const agentRoot = hostRoot();
    try {
      const agent = agentFor(c, agentRoot, payload, { kataDir: RHCOS_LAYOUT.kataDir });
      const desired: Desired = { hash: "mc00000000000001", handlers: machineConfigHandlers(spec, BACKENDS), allowedAnnotations: [] };
      const { changes } = await agent.pendingChanges(desired);
      const agentLayout = defaultLayout({ kataDir: RHCOS_LAYOUT.kataDir });
      const content = machineConfigContent(spec, { backends: BACKENDS, layout: agentLayout, runtimeLayout: prefixed(agentLayout, agentRoot) });
      // contentFiles would refuse these /opt paths (the MCO cannot write there): list them as it does.
      const ours = [{ path: CRIO_DROPIN, content: content.crioDropIn }, ...content.kataFiles, ...(content.runscConfig ? [content.runscConfig] : [])];
      assert.ok(content.runscConfig && content.kataFiles.length, "Kata files and runsc.toml on both sides");
      const planned = new Map(changes.map((ch) => [relative(agentRoot, ch.path), ch.content]));
      for (const f of ours) {
        const bytes = planned.get(f.path.slice(1));
        assert.ok(bytes, `the agent plans ${f.path} too (it plans ${[...planned.keys()].join(", ")})`);
        assert.ok(bytes.equals(Buffer.from(f.content)), `${f.path}: the agent's bytes\n--- agent ---\n${bytes.toString()}\n--- MachineConfig ---\n${f.content}`);
      }
      // What the agent plans beyond the MachineConfig's files: only the gVisor binaries it ships.
      const extra = [...planned.keys()].filter((p) => !ours.some((f) => f.path.slice(1) === p)).sort();
      assert.deepEqual(extra, ["opt/sandbox-operator/bin/containerd-shim-runsc-v1", "opt/sandbox-operator/bin/runsc"]);
    } finally {
      cleanup(agentRoot);
    }
  });

  it("a config Ignition refuses fails the apply with Ignition's own words and writes nothing", async () => {
    const bad = hostRoot();
    try {
      const config = { ...mc.spec.config, ignition: { version: "9.9.9" } };
      await assert.rejects(ignitionApply(config, bad), /Ignition's fetch-offline stage failed \(exit 1\)[\s\S]*unsupported config version/);
      assert.deepEqual(readdirSync(bad), []);
    } finally {
      cleanup(bad);
    }
  });
});
