// Node tier, payloads on CRI-O (docs/payloads.md): the gVisor payload `npm run build:image` builds and
// a Kata payload with Kata's real shim are pulled through CRI-O's CRI from the local registry (the
// node's registries.conf mirrors localhost/*), installed per version, named by CRI-O's drop-in, kept
// while a gVisor pod runs on the old version (CRI-O lists no handler: the agent reads it from the
// sandbox's verbose status), and removed by uninstall after the config goes, which waits on CRI-O
// until no pod runs on our handlers.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse as parseToml } from "smol-toml";
import type { Desired } from "../../src/agent/apply.js";
import type { CriClient } from "../../src/agent/cri/client.js";
import { payloadHostDir, payloadVersion } from "../../src/agent/payloads.js";
import { writeArchive } from "../../src/images/build.js";
import { CRIO_DROPIN, defaultLayout, kataConfigPath, runscConfigPath } from "../../src/render/node/layout.js";
import { CRIO_BASE_DROPIN, startCrio, type Crio } from "../harness/crio.js";
import { buildCrioTestGvisorPayload } from "../harness/gvisor.js";
import { kataCheck } from "../harness/kata-check.js";
import { buildTestKataPayload, mirrorKvmFacts } from "../harness/kata-payload.js";
import { agentFor, cleanup, filesUnder, hostRoot, longRunningPod } from "./helpers.js";

const GVISOR_REPO = "sandbox-operator-gvisor";
const KATA_REPO = "sandbox-operator-kata";
const gvisorHandlers = [
  { name: "sandboxed", backend: "gvisor" as const, general: true },
  { name: "gvisor", backend: "gvisor" as const },
];
const desired = (hash: string, payloads: Desired["payloads"] = {}): Desired => ({ hash, handlers: gvisorHandlers, payloads });

/**
 * Stops and removes a gVisor pod as the kubelet does, retrying RemovePodSandbox as its garbage
 * collection would. CRI-O unmounts the rootfs before it deletes the task, so runsc's delete fails
 * on its self-backed filestore ("failed to delete filestore file"), and a retry can then fail on an
 * IO fifo the first attempt removed; each attempt gets further, none leaves the pod running.
 */
async function removeGvisorPod(cri: CriClient, pod: string): Promise<void> {
  await cri.stopPodSandbox(pod);
  for (let attempt = 1; ; attempt++) {
    try {
      await cri.removePodSandbox(pod);
      return;
    } catch (e) {
      if (attempt === 5 || !/no such file or directory/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe("gVisor and Kata payloads on CRI-O, pulled through its CRI from the local registry", { concurrency: false }, () => {
  let root: string;
  let work: string;
  let c: Crio;
  let cri: CriClient;
  let g1: string;
  let g2: string;
  let k1: string;

  /** Pushed as localhost/<repo>, the name the shipped manifests use; registries.conf sends it to the loopback registry. */
  async function push(built: Parameters<typeof writeArchive>[0], repo: string): Promise<string> {
    const archive = join(work, `${repo}-${built.tag}.oci.tar`);
    writeArchive(built, archive);
    await c.registry.push(archive, `localhost/${repo}`, { tag: built.tag });
    return `localhost/${repo}@${built.digest}`;
  }

  before(async () => {
    root = hostRoot();
    work = mkdtempSync(join(tmpdir(), "sandbox-operator-crio-payloads-"));
    mkdirSync(join(root, "opt"), { recursive: true });
    c = await startCrio({ hostRoot: root, mirrorPrefixes: ["localhost"] });
    cri = c.cri();
    g1 = await push(await buildCrioTestGvisorPayload("0.1.0"), GVISOR_REPO);
    g2 = await push(await buildCrioTestGvisorPayload("0.1.1"), GVISOR_REPO);
    k1 = await push(await buildTestKataPayload("4.1.0-test.1"), KATA_REPO);
    mirrorKvmFacts(root);
  });
  after(async () => {
    cri?.close();
    await c?.stop();
    cleanup(root, work);
  });

  const version = (backend: "gvisor" | "kata", ref: string) => join(root, payloadHostDir(backend, payloadVersion(ref)));
  const dirs = (backend: string) => (existsSync(join(root, "opt/sandbox-operator", backend)) ? readdirSync(join(root, "opt/sandbox-operator", backend)).sort() : []);
  const dropIn = () => parseToml(readFileSync(join(root, CRIO_DROPIN), "utf8")) as { crio: { runtime: { runtimes: Record<string, { runtime_path: string; runtime_type: string; runtime_config_path: string }> } } };
  const agent = () => agentFor(c, root, undefined, { gvisorPayload: g1 });

  it("a node with no gVisor gets the default payload through CRI-O's CRI; CRI-O's drop-in runs its shim; both handlers run under gVisor", async () => {
    assert.equal(await cri.imageStatus(g1), null, "the payload is not on the node before the apply");
    const a = agent();
    const out = await a.apply(desired("c5a0000000000001"));
    assert.equal(out.ok, true, `${out.message}\n--- crio.log (tail) ---\n${c.log().split("\n").slice(-30).join("\n")}`);
    for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, `${h.name}: ${h.message}`);
    assert.notEqual(await cri.imageStatus(g1), null, "pulled through CRI-O from the mirror");
    assert.deepEqual(dirs("gvisor"), [payloadVersion(g1)], "one version, no temp dir");
    for (const h of ["sandboxed", "gvisor"]) {
      const r = dropIn().crio.runtime.runtimes[h]!;
      assert.equal(r.runtime_type, "vm", h);
      assert.equal(r.runtime_path, join(version("gvisor", g1), "containerd-shim-runsc-v1"), h);
    }
    assert.match(readFileSync(join(root, runscConfigPath(defaultLayout())), "utf8"), new RegExp(`binary_name = ".*${payloadVersion(g1)}/runsc"`));
    const restarts = c.restarts();
    const again = await a.apply(desired("c5a0000000000001"));
    assert.equal(again.ok, true, again.message);
    assert.equal(c.restarts(), restarts, "the same input again: no pull, no copy, no restart");
  });

  it("a Kata payload installs beside gVisor's; CRI-O loads the Kata handlers from the installed shim, Kata's loader accepts their configuration, and a Kata pod that cannot run here rolls the apply back", async () => {
    const a = agent();
    const payloads = { kata: { image: k1, imagePullPolicy: "IfNotPresent" as const } };
    const installed = await a.apply(desired("c5a0000000000002", payloads));
    assert.equal(installed.ok, true, installed.message);
    assert.deepEqual(dirs("kata"), [payloadVersion(k1)]);
    const p = a.inventory!.probe.backends.find((b) => b.backend === "kata-qemu")!;
    assert.deepEqual([p.installed, p.usable], [true, false], p.message);
    // Forced onto this node: the drop-in names the installed shim, and Kata's loader takes the config as written.
    const forced: Desired = { hash: "c5a000000000000f", handlers: [...gvisorHandlers, { name: "kata", backend: "kata-qemu" }], payloads };
    const { changes } = await a.pendingChanges(forced);
    const kataConf = join(root, kataConfigPath(defaultLayout(), "kata"));
    const file = changes.find((ch) => ch.path === kataConf);
    assert.ok(file?.content, `${kataConf} is planned`);
    const dir = version("kata", k1);
    const r = await kataCheck({ path: kataConf, content: file.content.toString() }, { standIns: [], real: filesUnder(dir) });
    assert.equal(r.config.HypervisorConfig.HypervisorPath, join(dir, "bin/qemu-system-x86_64"));
    assert.equal(r.config.HypervisorConfig.KernelPath, join(dir, "share/kata-containers/vmlinux.container"));
    const before = readFileSync(join(root, CRIO_DROPIN));
    const out = await a.apply(forced);
    assert.equal(out.ok, false);
    assert.equal(out.reason, "VerificationFailed", out.message);
    const kata = out.handlers.find((h) => h.name === "kata")!;
    assert.equal(kata.verified, false);
    // CRI-O took the handler (no "failed to find runtime handler"): its shim, the payload's, was started and failed.
    assert.doesNotMatch(kata.message ?? "", /failed to find runtime handler/, kata.message);
    assert.doesNotMatch(c.log(), /Runtime handler \\"kata\\" is being ignored/);
    assert.ok(readFileSync(join(root, CRIO_DROPIN)).equals(before), "the drop-in restored");
    assert.equal(existsSync(kataConf), false, "the Kata file of the failed apply is gone");
    assert.deepEqual(dirs("kata"), [payloadVersion(k1)], "the installed version stays");
    const v = await cri.version();
    assert.equal(v.runtime_name, "cri-o", "CRI-O serves after the rollback");
  });

  it("a gVisor upgrade installs beside the old version, a running gVisor pod keeps it until it ends, then it goes", async () => {
    const a = agent();
    const old = await longRunningPod(cri, root, "crio-on-old-payload", "gvisor");
    const out = await a.apply(desired("c5a0000000000003", { gvisor: { image: g2 } }));
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, true);
    for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, `${h.name}: ${h.message}`);
    assert.equal(dropIn().crio.runtime.runtimes.sandboxed!.runtime_path, join(version("gvisor", g2), "containerd-shim-runsc-v1"));
    assert.equal((await cri.containerStatus(old.container)).state, "CONTAINER_RUNNING", "the pod on the old payload survived CRI-O's restart");
    assert.deepEqual(dirs("gvisor"), [payloadVersion(g1), payloadVersion(g2)].sort(), "the old version stays while a sandbox runs on it");
    assert.deepEqual(dirs("kata"), [], "the Kata payload left this config: retired");
    const kept = await a.collectPayloads();
    assert.deepEqual(kept.removed, []);
    assert.match(kept.inUse.join(" "), /crio-on-old-payload/);
    // The pod ends (stopped: no longer ready). It is not removed here: it ran across CRI-O's restart,
    // and CRI-O 1.34's IO closer for a restored "vm" container is not idempotent (restoreContainerIO in
    // internal/oci/runtime_vm.go fails on a fifo its first attempt removed), so once runsc's delete has
    // failed once (removeGvisorPod) CRI-O cannot remove it; the harness's stop() takes it with CRI-O.
    await cri.stopPodSandbox(old.pod);
    const gone = await a.collectPayloads();
    assert.deepEqual(gone.removed, [payloadHostDir("gvisor", payloadVersion(g1))]);
    assert.deepEqual(dirs("gvisor"), [payloadVersion(g2)]);
  });

  it("uninstall keeps CRI-O's drop-in while a pod runs on our handlers (CRI-O could not stop it without), then reverts it first and removes every version and /opt/sandbox-operator", async () => {
    const a = agent();
    const pod = await longRunningPod(cri, root, "crio-during-uninstall", "gvisor");
    const dropInBefore = readFileSync(join(root, CRIO_DROPIN));
    const restarts = c.restarts();
    const first = await a.revert();
    assert.equal(first.ok, false);
    assert.equal(first.reason, "HandlerInUse", first.message);
    assert.equal(first.retry, true);
    assert.match(first.message, /node-test\/crio-during-uninstall/);
    assert.ok(readFileSync(join(root, CRIO_DROPIN)).equals(dropInBefore), "config kept: nothing written");
    assert.equal(c.restarts(), restarts, "no restart");
    assert.ok(existsSync(join(version("gvisor", g2), "runsc")));
    assert.equal((await cri.containerStatus(pod.container)).state, "CONTAINER_RUNNING");
    // The pod can still be stopped and removed, because its handler is still configured.
    await removeGvisorPod(cri, pod.pod);
    const second = await a.revert();
    assert.equal(second.ok, true, second.message);
    assert.equal(c.restarts(), restarts + 1);
    assert.equal(existsSync(join(root, CRIO_DROPIN)), false, "drop-in gone");
    assert.deepEqual(readdirSync(c.configDir), [CRIO_BASE_DROPIN.split("/").pop()], "only the package's own drop-in");
    assert.equal(existsSync(join(root, "opt/sandbox-operator")), false, `nothing of ours left under /opt: ${readdirSync(join(root, "opt")).join(", ")}`);
    assert.deepEqual(a.payloads.store.state().versions, []);
    const handlers = ((await cri.statusVerbose()).runtime_handlers ?? []).map((h) => h.name);
    assert.ok(!handlers.includes("gvisor") && !handlers.includes("sandboxed"), `CRI-O no longer lists our handlers (it lists ${handlers.join(", ")})`);
  });
});
