// Node tier, gVisor payloads (docs/payloads.md): the payload image `npm run build:image` builds is
// pulled from the local registry through containerd 2's mirror config, installed per version,
// switched to, kept while a gVisor pod runs on it, and removed after; uninstall removes only ours.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Desired } from "../../src/agent/apply.js";
import type { CriClient } from "../../src/agent/cri/client.js";
import { payloadHostDir, payloadVersion } from "../../src/agent/payloads.js";
import { VERIFY_BUSYBOX, writeArchive } from "../../src/images/build.js";
import { buildImage, ociArch } from "../../src/images/oci.js";
import { PAYLOAD_COPY_COMMAND } from "../../src/manifests/names.js";
import { CONTAINERD_DROPIN, runscConfigPath, defaultLayout } from "../../src/render/node/layout.js";
import { startContainerd, v3Config, type Containerd } from "../harness/containerd.js";
import { buildDefaultGvisorPayload } from "../harness/gvisor.js";
import { mirrorHostsToml } from "../harness/node-config.js";
import { startRegistry, type Registry } from "../harness/registry.js";
import { agentFor, cleanup, hostRoot, longRunningPod } from "./helpers.js";

const REPO = "sandbox-operator-gvisor";
const desired = (hash: string, image?: string): Desired => ({
  hash,
  handlers: [
    { name: "sandboxed", backend: "gvisor", general: true },
    { name: "gvisor", backend: "gvisor" },
  ],
  ...(image ? { payloads: { gvisor: { image } } } : {}),
});

describe("gVisor payloads on containerd 2.x, pulled from the local registry", { concurrency: false }, () => {
  let root: string;
  let work: string;
  let reg: Registry;
  let c: Containerd;
  let cri: CriClient;
  /** As the shipped manifests name it: localhost/<repo>@sha256:..., which the node mirrors to the local registry. */
  let v1: string;
  let v2: string;

  async function push(tag: string): Promise<string> {
    const built = await buildDefaultGvisorPayload(tag);
    const archive = join(work, `payload-${tag}.oci.tar`);
    writeArchive(built, archive);
    await reg.push(archive, REPO, { tag });
    return `localhost/${REPO}@${built.digest}`;
  }

  before(async () => {
    root = hostRoot();
    work = mkdtempSync(join(tmpdir(), "sandbox-operator-payloads-"));
    reg = await startRegistry();
    v1 = await push("0.1.0");
    v2 = await push("0.1.1");
    // An air-gapped node: pulls of localhost/* resolve only in the local registry (hosts.toml mirror).
    const certs = join(root, "etc/containerd/certs.d");
    mkdirSync(join(certs, "localhost"), { recursive: true });
    writeFileSync(join(certs, "localhost", "hosts.toml"), mirrorHostsToml("localhost", reg.host));
    const config = `${v3Config(root)}[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${certs}"\n`;
    c = await startContainerd({ version: "2", hostRoot: root, config });
    cri = c.cri();
  });
  after(async () => {
    cri?.close();
    await c?.stop();
    await reg?.stop();
    cleanup(root, work);
  });

  const version = (ref: string) => join(root, payloadHostDir("gvisor", payloadVersion(ref)));
  const runscToml = () => readFileSync(join(root, runscConfigPath(defaultLayout())), "utf8");
  const gvisorDirs = () => readdirSync(join(root, "opt/sandbox-operator/gvisor")).sort();

  it("a node with no gVisor gets it from the default payload: pulled through CRI, installed under its digest, verified", async () => {
    assert.equal(existsSync(join(root, "usr/local/bin/runsc")) || existsSync(join(root, "opt/sandbox-operator/bin/runsc")), false, "the host has no runsc");
    assert.equal(await cri.imageStatus(v1), null, "the payload is not on the node before the apply");
    // A directory the agent did not install: uninstall must leave it.
    mkdirSync(join(root, "opt/sandbox-operator/gvisor/installed-by-hand"), { recursive: true });
    const agent = agentFor(c, root, undefined, { gvisorPayload: v1 });
    const probe = await agent.probe();
    const g = probe.backends.find((b) => b.backend === "gvisor");
    assert.equal(g?.usable, true, g?.message);
    assert.equal(g?.installed, false);
    const out = await agent.apply(desired("aaaa000000000001"));
    assert.equal(out.ok, true, out.message);
    for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, `${h.name}: ${h.message}`);
    assert.notEqual(await cri.imageStatus(v1), null, "pulled through CRI from the mirror");
    for (const f of ["runsc", "containerd-shim-runsc-v1"]) assert.ok(existsSync(join(version(v1), f)), `${f} in ${version(v1)}`);
    assert.match(runscToml(), new RegExp(`binary_name = ".*${payloadVersion(v1)}/runsc"`));
    assert.match(readFileSync(join(root, CONTAINERD_DROPIN), "utf8"), new RegExp(`${payloadVersion(v1)}/containerd-shim-runsc-v1`));
    assert.deepEqual(gvisorDirs(), [payloadVersion(v1), "installed-by-hand"], "no temp dir left behind");
    // Applying again changes nothing: no pull, no copy, no restart.
    const restarts = c.restarts();
    const again = await agent.apply(desired("aaaa000000000001"));
    assert.equal(again.ok, true, again.message);
    assert.equal(c.restarts(), restarts);
    // The drift check (drift.ts) renders what apply would write: with a payload, the same version paths.
    assert.deepEqual((await agent.pendingChanges(desired("aaaa000000000001"))).changes.map((ch) => ch.path), [], "no drift right after an apply from a payload");
  });

  it("an upgrade installs the new version beside the old one, keeps a running gVisor pod alive on the old one, and removes it after that pod ends", async () => {
    const agent = agentFor(c, root, undefined, { gvisorPayload: v1 });
    const old = await longRunningPod(cri, root, "on-old-payload", "gvisor");
    assert.equal((await cri.containerStatus(old.container)).state, "CONTAINER_RUNNING");
    const out = await agent.apply(desired("aaaa000000000002", v2));
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, true, "the shim path changed: the runtime restarts on it");
    for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, `${h.name}: ${h.message}`);
    assert.match(runscToml(), new RegExp(`${payloadVersion(v2)}/runsc`));
    assert.ok(existsSync(join(version(v1), "runsc")), "the old version stays while a sandbox runs on it");
    assert.ok(existsSync(join(version(v2), "runsc")));
    assert.equal((await cri.containerStatus(old.container)).state, "CONTAINER_RUNNING", "the pod on the old payload survived the switch");
    const kept = await agent.collectPayloads();
    assert.deepEqual(kept.removed, []);
    assert.match(kept.inUse.join(" "), /on-old-payload/);
    await cri.stopPodSandbox(old.pod);
    await cri.removePodSandbox(old.pod);
    const gone = await agent.collectPayloads();
    assert.deepEqual(gone.removed, [payloadHostDir("gvisor", payloadVersion(v1))]);
    assert.equal(existsSync(version(v1)), false);
    assert.deepEqual(gvisorDirs(), [payloadVersion(v2), "installed-by-hand"]);
  });

  it("operator upgrades (a new agent whose default payload is another digest, no payload in the SandboxConfig), twice in a row: each switches and leaves exactly one version", async () => {
    for (const [i, ref] of [v1, v2].entries()) {
      const upgraded = agentFor(c, root, undefined, { gvisorPayload: ref });
      const out = await upgraded.apply(desired(`aaaa00000000001${i}`));
      assert.equal(out.ok, true, out.message);
      for (const h of out.handlers) assert.match(h.kernel ?? "", /gVisor/, `${h.name}: ${h.message}`);
      assert.match(runscToml(), new RegExp(`${payloadVersion(ref)}/runsc`));
      assert.deepEqual(gvisorDirs(), [payloadVersion(ref), "installed-by-hand"].sort(), "the previous version went at once: no sandbox ran on it");
      assert.deepEqual(upgraded.payloads.store.state().versions.map((v) => v.version), [payloadVersion(ref)]);
    }
  });

  it("uninstall reverts the config first, keeps the version a running pod uses, then removes every version it installed and nothing else", async () => {
    const agent = agentFor(c, root, undefined, { gvisorPayload: v1 });
    const pod = await longRunningPod(cri, root, "during-uninstall", "gvisor");
    const first = await agent.revert();
    assert.equal(first.ok, false);
    assert.equal(first.reason, "PayloadInUse", first.message);
    assert.equal(first.retry, true);
    assert.match(first.message, /during-uninstall/);
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false, "config reverted first");
    assert.ok(existsSync(join(version(v2), "runsc")), "binaries kept under the running pod");
    assert.equal((await cri.containerStatus(pod.container)).state, "CONTAINER_RUNNING");
    await cri.stopPodSandbox(pod.pod);
    await cri.removePodSandbox(pod.pod);
    const second = await agent.revert();
    assert.equal(second.ok, true, second.message);
    assert.equal(existsSync(version(v2)), false);
    assert.deepEqual(gvisorDirs(), ["installed-by-hand"], "only what the agent installed is gone");
    assert.deepEqual(readdirSync(join(root, "opt/sandbox-operator")), ["gvisor"], "no directory of ours left beside the one holding the admin's (the cluster tier checks /opt/sandbox-operator itself goes)");
  });

  it("a payload image without the gVisor files fails as PayloadInstallFailed, naming the image; nothing is written", async () => {
    const empty = buildImage({ repository: `localhost/${REPO}-empty`, tag: "1", architecture: ociArch(process.arch), entrypoint: PAYLOAD_COPY_COMMAND, env: [], user: "0:0", workingDir: "/", labels: {}, layers: [{ comment: "busybox only", entries: [{ path: "bin", type: "dir", mode: 0o755 }, { path: "bin/busybox", type: "file", mode: 0o755, content: readFileSync(VERIFY_BUSYBOX) }, { path: "payload", type: "dir", mode: 0o755 }] }] });
    const archive = join(work, "empty.oci.tar");
    writeFileSync(archive, empty.archive);
    await reg.push(archive, `${REPO}-empty`, { tag: "1" });
    const ref = `localhost/${REPO}-empty@${empty.digest}`;
    const agent = agentFor(c, root, undefined, { gvisorPayload: v1 });
    const out = await agent.apply(desired("aaaa000000000003", ref));
    assert.equal(out.ok, false);
    assert.equal(out.reason, "PayloadInstallFailed", out.message);
    assert.match(out.message, new RegExp(`${ref.replace(/[.]/g, "\\.")} lacks runsc or containerd-shim-runsc-v1 under /payload`));
    assert.equal(existsSync(join(root, CONTAINERD_DROPIN)), false, "no config written");
    assert.deepEqual(gvisorDirs(), ["installed-by-hand"], "no version dir, no temp dir");
  });
});
