// Drift at the node tier: the real controller, the agent process and a real containerd 2.x with
// gVisor. The test regenerates containerd's config behind the agent's back (as k3s does) and
// restarts it; the agent reports Degraded, the controller unlabels, the agent re-applies, and
// after repeated overwrites it holds off (DriftRepeated) instead of restarting in a loop.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { pino } from "pino";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SandboxNode } from "../../src/api/sandboxnode.js";
import type { KubeObject } from "../../src/kube/client.js";
import { findDrift, refreshBackups, runtimeHandlers } from "../../src/agent/drift.js";
import { startContainerd, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { configObject, createNodes, eventually, runtimeLabels, setupEnv, startController, type Env } from "../integration/controller-helpers.js";
import { agentFor, cleanup, hostRoot } from "./helpers.js";

type SN = Omit<SandboxNode, "metadata"> & KubeObject;
const NODE = "drift-node";
const MAIN = join(import.meta.dirname, "..", "..", "src", "agent", "main.ts");
const LABEL = "sandboxing.dev/runtime.sandboxed";
const DRIFT_S = 2;

describe("drift: config regenerated behind the agent's back (real controller, agent process, containerd 2.x + gVisor)", { concurrency: false }, () => {
  let env: Env;
  let ctl: Awaited<ReturnType<typeof startController>>;
  let c: Containerd;
  let root: string;
  let payload: string;
  let agent: ChildProcess;
  let agentLog = "";
  let original: Buffer;

  const sn = () => env.client.get<SN>("SandboxNode", NODE);
  const cond = (o: SN, type: string) => o.status?.conditions?.find((x) => x.type === type);
  const fail = (e: Error) => assert.fail(`${e.message}\nagent log:\n${agentLog.split("\n").slice(-40).join("\n")}`);
  /** What k3s does when it regenerates its containerd config: its own config.toml (no imports), written whole, then a restart. */
  const regenerate = () =>
    c.regenerate(() => {
      writeFileSync(`${c.configPath}.new`, original);
      renameSync(`${c.configPath}.new`, c.configPath);
    });
  /** Polls SandboxNode and Node together until the node is Ready again, recording what it went through. */
  async function watchUntilReady(what: string, timeoutMs = 60_000) {
    const seen = { reasons: new Set<string>(), unlabelledWhileDegraded: false, configShowedDegraded: false, degraded: [] as string[] };
    await eventually(what, async () => {
      const o = await sn();
      const labels = await runtimeLabels(env.client, NODE);
      const deg = cond(o, "Degraded");
      if (deg?.status === "True") {
        seen.reasons.add(deg.reason);
        seen.degraded.push(deg.message);
        if (!labels[LABEL]) seen.unlabelledWhileDegraded = true;
        const config = await env.client.get<KubeObject & { status?: { nodes?: Array<{ name: string; state: string; reason?: string }> } }>("SandboxConfig", "cluster");
        const row = config.status?.nodes?.find((n) => n.name === NODE);
        if (row?.state === "Degraded" && row.reason === deg.reason) seen.configShowedDegraded = true;
      }
      return seen.reasons.size > 0 && cond(o, "Ready")?.status === "True" && labels[LABEL] === "true" && o;
    }, timeoutMs, 50).catch(fail);
    return seen;
  }

  before(async () => {
    env = await setupEnv();
    root = hostRoot();
    payload = await gvisorPayload("2");
    c = await startContainerd({ version: "2", hostRoot: root });
    original = readFileSync(c.configPath);
    ctl = await startController(env);
    await createNodes(env.client, [NODE]);
    await env.client.create(configObject({}));
    agent = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "--node-name", NODE, "--host-root", root, "--kubeconfig", env.cp.kubeconfigPath, "--cri-socket", c.socket, "--restart-strategy", "command", "--restart-command", c.restartScript, "--payload-dir", payload, "--config-prefix", root, "--runsc-flag", "network=none", "--verify-image", TEST_IMAGE, "--health-port", "0", "--verify-with", "cri", "--drift-check-seconds", String(DRIFT_S), ...(process.env.DRIFT_DEBUG ? ["--log-level", "debug"] : [])],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    agent.stdout!.on("data", (d: Buffer) => (agentLog += d.toString()));
    agent.stderr!.on("data", (d: Buffer) => (agentLog += d.toString()));
  });
  after(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      agent.kill("SIGTERM");
      await new Promise((r) => agent.once("exit", r));
    }
    if (process.env.DRIFT_DEBUG) writeFileSync(process.env.DRIFT_DEBUG, `${agentLog}\n----containerd\n${c?.log()}\n----restarts\n${readFileSync(join(c.dir, "restarts.log"), "utf8")}`);
    await ctl?.stop();
    await env?.stop();
    await c?.stop();
    cleanup(root, payload);
  });

  it("installs: Verified, labelled by the controller; containerd lists our handlers in CRI Status", async () => {
    await eventually("node verified and labelled", async () => {
      const o = await sn();
      return cond(o, "Ready")?.reason === "Verified" && (await runtimeLabels(env.client, NODE))[LABEL] === "true";
    }, 120_000).catch(fail);
    const listed = await runtimeHandlers(c.socket);
    assert.ok(listed, "containerd 2 answers CRI Status with its handlers");
    for (const h of ["sandboxed", "gvisor", "runc"]) assert.ok(listed.includes(h), `${h} in ${listed.join(",")}`);
  });

  it("config.toml regenerated behind its back: Degraded ConfigDrift naming the file and the missing import, unlabelled, re-applied, Ready and labelled again", async () => {
    const restarts = c.restarts();
    await regenerate();
    assert.deepEqual(await runtimeHandlers(c.socket).then((l) => l?.filter((h) => h === "sandboxed")), [], "containerd runs without our handlers now");
    const seen = await watchUntilReady("drift noticed and repaired", DRIFT_S * 1000 + 60_000);
    assert.deepEqual([...seen.reasons], ["ConfigDrift"]);
    const msg = seen.degraded[0]!;
    assert.match(msg, /^\/etc\/containerd\/config\.toml its imports no longer list \S*\/etc\/containerd\/conf\.d\/50-sandbox-operator\.toml; containerd does not list handler\(s\) sandboxed, gvisor \(CRI Status\); re-applying/);
    assert.ok(seen.unlabelledWhileDegraded, "the controller took the runtime label off while the node was Degraded");
    assert.ok(seen.configShowedDegraded, "SandboxConfig status.nodes showed the node Degraded with the agent's reason");
    assert.equal(c.restarts(), restarts + 2, "the test's restart and one restart by the agent's re-apply");
    assert.match(readFileSync(c.configPath, "utf8"), /imports = \[/);
    assert.ok((await runtimeHandlers(c.socket))!.includes("sandboxed"));
    const o = await sn();
    assert.deepEqual(o.status!.handlers!.map((h) => [h.name, h.verified]), [["sandboxed", true], ["gvisor", true]]);
    type Config = KubeObject & { status?: { nodes?: Array<{ name: string; state: string }> } };
    await eventually("SandboxConfig shows the node Ready", async () => (await env.client.get<Config>("SandboxConfig", "cluster")).status?.nodes?.find((n) => n.name === NODE)?.state === "Ready").catch(fail);
  });

  it("overwritten again and again: 3 re-applies, then DriftRepeated holds off (no restart, unlabelled), then one re-apply once the hold ends", async () => {
    // Two more overwrites right after each re-apply (the previous test was the first): the streak grows to 3.
    for (let i = 2; i <= 3; i++) {
      await regenerate();
      const seen = await watchUntilReady(`overwrite ${i} repaired`);
      assert.deepEqual([...seen.reasons], ["ConfigDrift"], `overwrite ${i}`);
    }
    const restarts = c.restarts();
    await regenerate();
    const held = await eventually("DriftRepeated", async () => {
      const o = await sn();
      return cond(o, "Degraded")?.reason === "DriftRepeated" && o;
    }, 30_000, 50).catch(fail);
    const deg = cond(held, "Degraded")!;
    assert.equal(deg.status, "True");
    assert.match(deg.message, /overwritten 4 times in a row/);
    assert.match(deg.message, new RegExp(`re-applying in ${DRIFT_S} s`));
    assert.match(deg.message, /^\/etc\/containerd\/config\.toml its imports no longer list /);
    await eventually("unlabelled while held", async () => !(await runtimeLabels(env.client, NODE))[LABEL]).catch(fail);
    assert.equal(c.restarts(), restarts + 1, "holding: the agent did not restart containerd (only the test did)");
    const seen = await watchUntilReady("re-applied after the hold");
    assert.ok(seen.reasons.has("DriftRepeated"));
    assert.equal(c.restarts(), restarts + 2, "one re-apply after the hold");
  });

  it("left alone, the config stays: no more restarts over several drift intervals", async () => {
    const restarts = c.restarts();
    await new Promise((r) => setTimeout(r, DRIFT_S * 3 * 1000));
    assert.equal(c.restarts(), restarts);
    const o = await sn();
    assert.equal(cond(o, "Ready")?.reason, "Verified");
    assert.match(agentLog, /runtime configuration drifted; re-applying/);
  });
});

describe("drift on containerd 1.6 (config.toml edited in place): findDrift names the lost tables; a regenerated file becomes the original revert restores", { concurrency: false }, () => {
  let root: string;
  let payload: string;
  let c: Containerd;
  const desired = { hash: "drift16000000001", handlers: [{ name: "sandboxed", backend: "gvisor" as const, general: true }, { name: "gvisor", backend: "gvisor" as const }] };

  before(async () => {
    root = hostRoot();
    payload = await gvisorPayload("1.6");
    c = await startContainerd({ version: "1.6", hostRoot: root });
  });
  after(async () => {
    await c?.stop();
    cleanup(root, payload);
  });

  it("no drift right after apply; after a regenerated config.toml: the tables are named, containerd no longer lists the handlers; re-apply; revert gives the regenerated file back", async () => {
    const agent = agentFor(c, root, payload);
    const log = pino({ level: "silent" });
    assert.equal((await agent.apply(desired)).ok, true);
    assert.equal(await findDrift(agent, desired, log), null, "what we applied is what runs");
    const before16 = await runtimeHandlers(c.socket);
    assert.ok(before16?.includes("sandboxed"), `containerd 1.6 lists handlers via its verbose CRI config: ${before16}`);
    const original = readFileSync(join(agent.state.dir, "backups", readdirSync(join(agent.state.dir, "backups")).find((f) => !f.endsWith(".json"))!));
    const regenerated = Buffer.concat([Buffer.from("# regenerated by the node's own tooling\n"), original]);
    await c.regenerate(() => writeFileSync(c.configPath, regenerated));
    const found = await findDrift(agent, desired, log);
    assert.ok(found);
    assert.deepEqual(found.files.map((f) => f.path), ["/etc/containerd/config.toml"]);
    assert.match(found.message, /^\/etc\/containerd\/config\.toml our runtime table\(s\) sandboxed, gvisor are gone; containerd does not list handler\(s\) sandboxed, gvisor \(CRI Status\)$/);
    assert.deepEqual(await refreshBackups(agent, desired), [c.configPath]);
    const out = await agent.apply(desired);
    assert.equal(out.ok, true, out.message);
    assert.equal(out.restarted, true);
    assert.equal(await findDrift(agent, desired, log), null);
    assert.equal((await agent.revert()).ok, true);
    assert.ok(readFileSync(c.configPath).equals(regenerated), "revert restores the regenerated file, not the stale backup");
  });

  it("our files in place but containerd started on another config: only CRI Status shows it; restarting the runtime on our files clears it", async () => {
    const agent = agentFor(c, root, payload);
    const log = pino({ level: "silent" });
    const plain = readFileSync(c.configPath);
    assert.equal((await agent.apply(desired)).ok, true);
    const ours = readFileSync(c.configPath);
    // Started on the plain file, then our bytes put back without a restart (an admin's edit undone).
    await c.regenerate(() => writeFileSync(c.configPath, plain));
    writeFileSync(`${c.configPath}.new`, ours);
    renameSync(`${c.configPath}.new`, c.configPath);
    const found = await findDrift(agent, desired, log);
    assert.ok(found);
    assert.deepEqual(found.files, []);
    assert.deepEqual(found.missingHandlers, ["sandboxed", "gvisor"]);
    assert.equal(found.message, "containerd does not list handler(s) sandboxed, gvisor (CRI Status)");
    const restarts = c.restarts();
    await agent.restartRuntime();
    assert.equal(c.restarts(), restarts + 1);
    assert.equal(await findDrift(agent, desired, log), null);
  });
});

describe("--drift-check-seconds", () => {
  for (const bad of ["5s", "-1", "0.5", "90000"]) {
    it(`${bad}: the agent refuses to start, naming the flag and the range`, async () => {
      const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--node-name", "n", "--verify-image", TEST_IMAGE, "--drift-check-seconds", bad], { stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      p.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise((r) => p.once("exit", r));
      assert.equal(code, 1);
      assert.equal(err.trim(), `sandbox-agent: --drift-check-seconds ${bad}: expected 0 (off) or a number of seconds from 1 to 86400 (default 180)`);
    });
  }
});
