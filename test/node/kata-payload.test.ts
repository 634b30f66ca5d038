// Node tier, Kata payloads (docs/payloads.md): a Kata payload image with Kata's real shim and
// stand-in guest files, pulled from the local registry through containerd 2's mirror config, installed
// per version beside gVisor's, loaded by Kata's own loader where the agent points at it, reported as
// installed but not runnable here, upgraded without stale files, and removed by uninstall.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import type { Desired } from "../../src/agent/apply.js";
import type { CriClient } from "../../src/agent/cri/client.js";
import { payloadHostDir, payloadVersion } from "../../src/agent/payloads.js";
import { kataBlockers } from "../../src/agent/probe/kata-blockers.js";
import type { Probe, SandboxConfigSpec } from "../../src/api/index.js";
import { validateSandboxConfig } from "../../src/api/validate.js";
import { VERIFY_BUSYBOX, writeArchive } from "../../src/images/build.js";
import { buildImage, ociArch } from "../../src/images/oci.js";
import { PAYLOAD_COPY_COMMAND } from "../../src/manifests/names.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { desiredNode } from "../../src/render/desired-node.js";
import { CONTAINERD_DROPIN, defaultLayout, kataConfigPath } from "../../src/render/node/layout.js";
import { binaryPath } from "../harness/binaries.js";
import { startContainerd, v3Config, type Containerd } from "../harness/containerd.js";
import { buildDefaultGvisorPayload } from "../harness/gvisor.js";
import { kataCheck } from "../harness/kata-check.js";
import { buildTestKataPayload, kataPayloadTree, mirrorKvmFacts } from "../harness/kata-payload.js";
import { mirrorHostsToml } from "../harness/node-config.js";
import { startRegistry, type Registry } from "../harness/registry.js";
import { agentFor, cleanup, filesUnder, hostRoot } from "./helpers.js";

const run = promisify(execFile);
const KATA_BACKENDS = ["kata-qemu", "kata-clh", "kata-fc"] as const;
/** The example the docs tell admins to apply, with the pushed digest in place of its placeholder. */
const EXAMPLE = "examples/sandboxconfig-kata-payload.yaml";

function exampleSpec(kataImage: string): SandboxConfigSpec {
  const doc = parseYaml(readFileSync(join(repoRoot(), EXAMPLE), "utf8")) as { spec: SandboxConfigSpec };
  const spec = validateSandboxConfig(doc).spec;
  return { ...spec, payloads: { ...spec.payloads, kata: { ...spec.payloads!.kata!, image: kataImage } } };
}

describe("Kata payloads on containerd 2.x, pulled from the local registry", { concurrency: false }, () => {
  let root: string;
  let work: string;
  let reg: Registry;
  let c: Containerd;
  let cri: CriClient;
  let gvisor: string;
  let k1: string;
  let k2: string;

  async function push(archiveName: string, built: { digest: string; archive: Buffer; repository: string; tag: string }, repo: string): Promise<string> {
    const archive = join(work, archiveName);
    writeArchive(built as Parameters<typeof writeArchive>[0], archive);
    await reg.push(archive, repo, { tag: built.tag });
    return `localhost/${repo}@${built.digest}`;
  }

  before(async () => {
    root = hostRoot();
    work = mkdtempSync(join(tmpdir(), "sandbox-operator-kata-payloads-"));
    reg = await startRegistry();
    gvisor = await push("gvisor.oci.tar", await buildDefaultGvisorPayload("0.1.0"), "sandbox-operator-gvisor");
    k1 = await push("kata-1.oci.tar", await buildTestKataPayload("4.1.0-test.1"), "sandbox-operator-kata");
    // The second version the way docs/payloads.md tells admins to build one: the shipped script on an /opt/kata tree.
    const tree = await kataPayloadTree("4.1.0-test.2");
    const archive = join(work, "kata-2.oci.tar");
    const { stdout } = await run("npm", ["run", "--silent", "build:kata-payload", "--", "--kata-dir", tree, "--tag", "4.1.0-test.2", "--out", archive], { cwd: repoRoot() });
    cleanup(tree);
    const digest = /^payload digest (sha256:[a-f0-9]{64})$/m.exec(stdout)?.[1];
    assert.ok(digest, stdout);
    await reg.push(archive, "sandbox-operator-kata", { tag: "4.1.0-test.2" });
    k2 = `localhost/sandbox-operator-kata@${digest}`;
    // An air-gapped node: pulls of localhost/* resolve only in the local registry (hosts.toml mirror).
    const certs = join(root, "etc/containerd/certs.d");
    mkdirSync(join(certs, "localhost"), { recursive: true });
    writeFileSync(join(certs, "localhost", "hosts.toml"), mirrorHostsToml("localhost", reg.host));
    const config = `${v3Config(root)}[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${certs}"\n`;
    c = await startContainerd({ version: "2", hostRoot: root, config });
    cri = c.cri();
    // The node's view of this machine's KVM: its /dev/kvm (the same device) and which kvm modules are loaded.
    mirrorKvmFacts(root);
    // Neither the agent's to remove: a directory beside our versions, and a Kata an admin installed.
    mkdirSync(join(root, "opt/sandbox-operator/kata/installed-by-hand"), { recursive: true });
    mkdirSync(join(root, "opt/kata/bin"), { recursive: true });
    writeFileSync(join(root, "opt/kata/bin/README"), "an admin's own Kata\n");
  });
  after(async () => {
    cri?.close();
    await c?.stop();
    await reg?.stop();
    cleanup(root, work);
  });

  const agent = () => agentFor(c, root, undefined, { gvisorPayload: gvisor });
  const version = (ref: string) => join(root, payloadHostDir("kata", payloadVersion(ref)));
  const kataDirs = () => readdirSync(join(root, "opt/sandbox-operator/kata")).sort();
  /** What the example yields on this node: desired from its spec and this node's probe, as the controller computes it. */
  const desiredFor = (kataImage: string, probe: Probe): Desired => desiredNode(exampleSpec(kataImage), probe);
  /** desired plus one handler per Kata backend: what a node where Kata runs would get. */
  const withKataHandlers = (d: Desired): Desired => ({ ...d, handlers: [...d.handlers, ...KATA_BACKENDS.map((b) => ({ name: b === "kata-qemu" ? "kata" : b, backend: b }))] });

  it("the example's Kata payload is pulled through CRI and installed under its digest beside gVisor's; Kata is reported installed but not runnable, with the reason, and gets no handler", async () => {
    const a = agent();
    const before = await a.probe();
    for (const b of KATA_BACKENDS) assert.equal(before.backends.find((x) => x.backend === b)?.installed, false, `${b} before the apply`);
    assert.equal(await cri.imageStatus(k1), null, "the payload is not on the node before the apply");
    const desired = desiredFor(k1, before);
    assert.deepEqual(desired.payloads, { kata: { image: k1, imagePullPolicy: "IfNotPresent" } }, "the example's Kata payload reaches desired");
    assert.equal(desired.handlers.some((h) => h.backend !== "gvisor"), false, "no Kata handler for a node whose probe says Kata cannot run");
    const out = await a.apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.notEqual(await cri.imageStatus(k1), null, "pulled through CRI from the mirror");
    const dir = version(k1);
    for (const f of ["bin/containerd-shim-kata-v2", "share/kata-containers/vmlinux.container", "share/kata-containers/kata-containers.img", "bin/qemu-system-x86_64", "bin/cloud-hypervisor", "bin/firecracker", "libexec/virtiofsd"]) {
      assert.ok(existsSync(join(dir, f)), `${f} in ${dir}`);
    }
    assert.deepEqual(kataDirs(), [payloadVersion(k1), "installed-by-hand"], "one version, no temp dir left behind");
    assert.equal(readdirSync(join(root, "opt/sandbox-operator/gvisor")).length, 1, "gVisor's payload beside it");
    // The installed shim is Kata's own, byte for byte, and runs.
    const shim = join(dir, "bin/containerd-shim-kata-v2");
    assert.ok(readFileSync(shim).equals(readFileSync(binaryPath("containerd-shim-kata-v2"))));
    const { stdout } = await run(shim, ["--version"]);
    assert.match(stdout, /^Kata Containers containerd shim \(Golang\): id: "io\.containerd\.kata\.v2", version: 4\.1\.0,/);
    // status.probe (the agent reports its inventory): installed from the payload, not usable, and why.
    const probe = a.inventory!.probe;
    for (const b of KATA_BACKENDS) {
      const p = probe.backends.find((x) => x.backend === b)!;
      const blockers = kataBlockers(b, { kvmModule: probe.kvm.module, vhostVsock: probe.vhostVsock });
      assert.ok(blockers.length > 0, `this tier's machines cannot run Kata (docs/kata.md); ${b}: ${p.message}`);
      assert.equal(p.installed, true, p.message);
      assert.equal(p.usable, false, p.message);
      assert.equal(p.message, `installed from the Kata payload ${k1} at ${payloadHostDir("kata", payloadVersion(k1))}, but Kata cannot run here: ${blockers.join("; ")}`);
    }
    if (probe.kvm.module === "kvm_pvm") assert.match(probe.backends.find((x) => x.backend === "kata-clh")!.message!, /kvm_pvm/);
    // Not verified, so never labelled: the controller computes no Kata handler from this probe either.
    assert.equal(out.handlers.some((h) => h.backend !== "gvisor"), false);
    assert.equal(desiredFor(k1, probe).handlers.some((h) => h.backend !== "gvisor"), false);
    assert.deepEqual((await a.pendingChanges(desired)).changes.map((ch) => ch.path), [], "no drift right after the apply");
  });

  it("where Kata runs, the agent points the Kata configuration and containerd's runtime at the installed version, and Kata's own loader accepts it", async () => {
    const a = agent();
    const desired = withKataHandlers(desiredFor(k1, await a.probe()));
    const { changes } = await a.pendingChanges(desired);
    const dir = version(k1);
    const dropIn = changes.find((ch) => ch.path === join(root, CONTAINERD_DROPIN));
    assert.ok(dropIn?.content, `the drop-in is planned: ${changes.map((ch) => ch.path).join(", ")}`);
    const runtimes = (parseToml(dropIn.content.toString()) as { plugins: Record<string, { containerd: { runtimes: Record<string, { runtime_type: string; runtime_path: string; options: { ConfigPath: string } }> } }> }).plugins["io.containerd.cri.v1.runtime"]!.containerd.runtimes;
    for (const h of ["kata", "kata-clh", "kata-fc"]) {
      assert.equal(runtimes[h]?.runtime_type, "io.containerd.kata.v2", h);
      assert.equal(runtimes[h]?.runtime_path, join(dir, "bin/containerd-shim-kata-v2"), h);
      assert.equal(runtimes[h]?.options.ConfigPath, join(root, kataConfigPath(defaultLayout(), h)), h);
    }
    // Only the payload's real files in Kata's chroot, no stand-ins: a path outside the version fails to load.
    const real = filesUnder(dir);
    const want: Record<string, { bin: string; type: string }> = { kata: { bin: "qemu-system-x86_64", type: "qemu" }, "kata-clh": { bin: "cloud-hypervisor", type: "clh" }, "kata-fc": { bin: "firecracker", type: "firecracker" } };
    for (const [h, w] of Object.entries(want)) {
      const path = join(root, kataConfigPath(defaultLayout(), h));
      const file = changes.find((ch) => ch.path === path);
      assert.ok(file?.content, `${path} is planned`);
      const r = await kataCheck({ path, content: file.content.toString() }, { standIns: [], real });
      assert.equal(r.config.HypervisorType, w.type, h);
      assert.equal(r.config.HypervisorConfig.HypervisorPath, join(dir, "bin", w.bin), h);
      assert.equal(r.config.HypervisorConfig.KernelPath, join(dir, "share/kata-containers/vmlinux.container"), h);
      assert.equal(r.config.HypervisorConfig.ImagePath, join(dir, "share/kata-containers/kata-containers.img"), h);
    }
  });

  it("a Kata handler forced onto this node: containerd starts the installed shim, which cannot run a sandbox here; the apply rolls back and the payload stays", async () => {
    const a = agent();
    const desired = withKataHandlers(desiredFor(k1, await a.probe()));
    const applied = a.state.state()!.appliedHash;
    const out = await a.apply({ ...desired, hash: "kata00000000000f" });
    assert.equal(out.ok, false);
    assert.equal(out.reason, "VerificationFailed", out.message);
    // Kata's shim itself answered: it logs to syslog before anything else, and this machine has no /dev/log.
    const shimSaid = existsSync("/dev/log") ? /failed to create shim task/ : /failed to create shim task: Unix syslog delivery error/;
    for (const h of out.handlers.filter((x) => x.backend !== "gvisor")) {
      assert.equal(h.verified, false, h.name);
      assert.match(h.message ?? "", shimSaid, h.name);
    }
    assert.equal(a.state.state()!.appliedHash, applied, "the node still runs what it ran");
    assert.doesNotMatch(readFileSync(join(root, CONTAINERD_DROPIN), "utf8"), /kata/, "the drop-in restored");
    assert.equal(existsSync(join(root, kataConfigPath(defaultLayout(), "kata"))), false, "the Kata file of the failed apply is gone");
    assert.deepEqual(kataDirs(), [payloadVersion(k1), "installed-by-hand"], "the installed version stays: the config in force still names it");
  });

  it("a second payload version installs side by side and becomes the only one: the old one goes once no sandbox can use it", async () => {
    const a = agent();
    const out = await a.apply(desiredFor(k2, await a.probe()));
    assert.equal(out.ok, true, out.message);
    assert.ok(existsSync(join(version(k2), "bin/containerd-shim-kata-v2")));
    // No Kata sandbox can run here, so none holds the old version: it is gone right after the switch.
    assert.equal(existsSync(version(k1)), false);
    assert.deepEqual(kataDirs(), [payloadVersion(k2), "installed-by-hand"], "exactly one active version, no stale files");
    const probe = a.inventory!.probe;
    assert.match(probe.backends.find((x) => x.backend === "kata-qemu")!.message!, new RegExp(`^installed from the Kata payload ${k2.replace(/[.]/g, "\\.")} at /opt/sandbox-operator/kata/${payloadVersion(k2)}, but`));
    const { changes } = await a.pendingChanges(withKataHandlers(desiredFor(k2, probe)));
    const kataFile = changes.find((ch) => ch.path === join(root, kataConfigPath(defaultLayout(), "kata")))!;
    assert.match(kataFile.content!.toString(), new RegExp(`${payloadVersion(k2)}/bin/qemu-system-x86_64`));
    assert.doesNotMatch(kataFile.content!.toString(), new RegExp(payloadVersion(k1)));
    // A config that drops the Kata payload retires it too.
    const noKata = { ...exampleSpec(k2), payloads: {} };
    const without = await a.apply(desiredNode(noKata, probe));
    assert.equal(without.ok, true, without.message);
    assert.deepEqual(kataDirs(), ["installed-by-hand"]);
    // Kata handlers without a Kata payload point at the host's Kata again, never at a removed version.
    const hostKata = (await a.pendingChanges(withKataHandlers(desiredNode(noKata, a.inventory!.probe)))).changes.find((ch) => ch.path === join(root, kataConfigPath(defaultLayout(), "kata")))!;
    assert.match(hostKata.content!.toString(), new RegExp(`path = "${root}/opt/kata/bin/qemu-system-x86_64"`));
    const back = await a.apply(desiredFor(k2, a.inventory!.probe));
    assert.equal(back.ok, true, back.message);
    assert.deepEqual(kataDirs(), [payloadVersion(k2), "installed-by-hand"]);
  });

  it("a Kata payload image without the guest kernel and image fails as PayloadInstallFailed, naming the image and the files; the version in force stays", async () => {
    const shim = readFileSync(binaryPath("containerd-shim-kata-v2"));
    const dir = (path: string) => ({ path, type: "dir" as const, mode: 0o755 });
    const bad = buildImage({ repository: "localhost/sandbox-operator-kata-shim-only", tag: "1", architecture: ociArch(process.arch), entrypoint: PAYLOAD_COPY_COMMAND, env: [], user: "0:0", workingDir: "/", labels: {}, layers: [{ comment: "shim only", entries: [dir("bin"), { path: "bin/busybox", type: "file", mode: 0o755, content: readFileSync(VERIFY_BUSYBOX) }, dir("payload"), dir("payload/bin"), { path: "payload/bin/containerd-shim-kata-v2", type: "file", mode: 0o755, content: shim }] }] });
    const archive = join(work, "shim-only.oci.tar");
    writeFileSync(archive, bad.archive);
    await reg.push(archive, "sandbox-operator-kata-shim-only", { tag: "1" });
    const ref = `localhost/sandbox-operator-kata-shim-only@${bad.digest}`;
    const a = agent();
    const out = await a.apply(desiredFor(ref, await a.probe()));
    assert.equal(out.ok, false);
    assert.equal(out.reason, "PayloadInstallFailed", out.message);
    assert.equal(out.retry, true);
    assert.ok(out.message.includes(`the kata payload image ${ref} lacks bin/containerd-shim-kata-v2 or share/kata-containers/vmlinux.container or share/kata-containers/kata-containers.img under /payload`), out.message);
    assert.deepEqual(kataDirs(), [payloadVersion(k2), "installed-by-hand"], "no version dir, no temp dir; the version in force stays");
    assert.equal(a.payloads.store.current("kata")?.image, k2);
  });

  it("uninstall removes every payload version it installed and its config, and nothing it did not install", async () => {
    const a = agent();
    const out = await a.revert();
    assert.equal(out.ok, true, out.message);
    assert.deepEqual(kataDirs(), ["installed-by-hand"], "only what the agent installed is gone");
    assert.equal(existsSync(join(root, "opt/sandbox-operator/gvisor")), false, "the gVisor payload's directory goes with its last version");
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false);
    assert.deepEqual(a.payloads.store.state().versions, []);
    assert.equal(readFileSync(join(root, "opt/kata/bin/README"), "utf8"), "an admin's own Kata\n", "a host-installed Kata is left alone");
    const probe = await a.probe();
    assert.equal(probe.backends.find((x) => x.backend === "kata-qemu")!.installed, false, "Kata is not installed any more");
  });

  it("a Kata-only config where Kata cannot run: no handler, the agent installs only the Kata payload and reports why Kata cannot run; uninstall removes it", async () => {
    const a = agent();
    const spec = { ...exampleSpec(k1), runtimes: { allowed: [...KATA_BACKENDS] } };
    const desired = desiredNode(spec, await a.probe());
    assert.deepEqual(desired.handlers, [], "nothing this node can run: the loop reports NoUsableBackend");
    const note = await a.installKataPayload(desired);
    assert.equal(note, `the Kata payload ${k1} is installed; status.probe says whether it can run here`);
    assert.deepEqual(kataDirs(), [payloadVersion(k1), "installed-by-hand"]);
    assert.equal(a.state.state(), null, "no configuration applied");
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false, "no runtime config written");
    const p = a.inventory!.probe.backends.find((x) => x.backend === "kata-fc")!;
    assert.deepEqual([p.installed, p.usable], [true, false]);
    assert.match(p.message!, new RegExp(`^installed from the Kata payload .*${payloadVersion(k1)}, but Kata cannot run here: `));
    assert.deepEqual(desiredNode(spec, a.inventory!.probe).handlers, [], "still no Kata handler: never labelled");
    assert.equal(await a.installKataPayload(desired), note, "again: nothing changes");
    assert.deepEqual(kataDirs(), [payloadVersion(k1), "installed-by-hand"]);
    const out = await a.revert();
    assert.equal(out.ok, true, out.message);
    assert.deepEqual(kataDirs(), ["installed-by-hand"]);
  });
});
