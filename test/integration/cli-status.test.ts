// `sandboxctl status` against a real kube-apiserver: the per-node table from SandboxNodes and the
// SandboxConfig's status, -o json/yaml, --watch redrawing as a node moves, exit 8 when not installed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { parse } from "yaml";
import { KubeClient, type AnyObject } from "../../src/kube/client.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { sandboxctl, startSandboxctl } from "../harness/sandboxctl.js";

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const cond = (type: string, status: string, reason: string, message = "") => ({ type, status, reason, message, lastTransitionTime: now(), observedGeneration: 1 });
const AGE = "\\d+s";

describe("sandboxctl status on a real apiserver", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "cli-status-test" });
    env = { KUBECONFIG: cp.kubeconfigPath };
  });
  after(async () => {
    for (const n of ["worker-1", "worker-2", "worker-3"]) await client?.delete("SandboxNode", n).catch(() => undefined);
    await client?.delete("SandboxConfig", "cluster").catch(() => undefined);
    client?.close();
    await cp?.stop();
  });

  it("exits 8 and says to install when the sandboxing.dev API is not served", async () => {
    if (await client.getOrNull("CustomResourceDefinition", "sandboxnodes.sandboxing.dev")) return assert.fail("this test needs a control plane without our CRDs: unset SANDBOX_TEST_KUBECONFIG");
    const r = await sandboxctl(["status"], env);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /sandboxing\.dev API is not served here \(CRDs missing\): run sandboxctl install first/);
  });

  it("prints one row per node with backend, state, reason and age", async () => {
    await installCrds(client);
    await client.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor", "kata-qemu"] } } } as AnyObject);
    await client.mergePatch("SandboxConfig", "cluster", {
      status: {
        observedGeneration: 1,
        counts: { selected: 3, ready: 1, progressing: 1, degraded: 1, uninstalling: 0 },
        nodes: [
          { name: "worker-1", state: "Ready", backend: "gvisor", reason: "Verified" },
          { name: "worker-2", state: "Degraded", backend: "kata-qemu", reason: "VerificationFailed", message: "QEMU did not start" },
        ],
        runtimeClasses: ["sandboxed", "gvisor"],
        conditions: [cond("Ready", "False", "NodesDegraded", "1 of 3 nodes degraded"), cond("Degraded", "True", "NodesDegraded", "worker-2: VerificationFailed")],
      },
    }, { subresource: "status" });
    for (const n of ["worker-1", "worker-2", "worker-3"]) {
      await client.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name: n }, spec: { action: "Apply", proceed: n === "worker-3", desired: { hash: "abc", handlers: [{ name: "sandboxed", backend: "gvisor", general: true }] } } } as AnyObject);
    }
    // worker-3 is not in the controller's summary yet: its row comes from the agent's status.
    await client.mergePatch("SandboxNode", "worker-3", { status: { phase: "Applying", conditions: [cond("Progressing", "True", "Applying", "writing config.toml")] } }, { subresource: "status" });

    const r = await sandboxctl(["status"], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.deepEqual(lines.slice(0, 4), [
      "SandboxConfig cluster: Ready=False (NodesDegraded) 1/3 nodes ready 1 degraded 1 progressing",
      "RuntimeClasses: sandboxed, gvisor",
      "Degraded: NodesDegraded: worker-2: VerificationFailed",
      "",
    ]);
    assert.match(lines[4]!, /^NODE {7}BACKEND {5}STATE {9}REASON {15}AGE$/);
    assert.match(lines[5]!, new RegExp(`^worker-1   gvisor      Ready         Verified             ${AGE}$`));
    assert.match(lines[6]!, new RegExp(`^worker-2   kata-qemu   Degraded      VerificationFailed   ${AGE}$`));
    assert.match(lines[7]!, new RegExp(`^worker-3   gvisor      Progressing   Applying             ${AGE}$`));
    assert.equal(lines.length, 9, r.stdout);
  });

  it("prints the same content as JSON and YAML", async () => {
    const json = await sandboxctl(["status", "-o", "json"], env);
    assert.equal(json.code, 0, json.stderr);
    const view = JSON.parse(json.stdout) as { config: { counts: { ready: number } }; nodes: Array<{ node: string; state: string; message?: string }> };
    assert.deepEqual(view.nodes.map((n) => [n.node, n.state]), [["worker-1", "Ready"], ["worker-2", "Degraded"], ["worker-3", "Progressing"]]);
    assert.equal(view.nodes[1]!.message, "QEMU did not start");
    assert.equal(view.config.counts.ready, 1);
    const yaml = await sandboxctl(["status", "-o", "yaml"], env);
    assert.deepEqual(parse(yaml.stdout), view);
    const bad = await sandboxctl(["status", "-o", "wide"], env);
    assert.equal(bad.code, 2, "an unknown output format is a usage error");
  });

  it("--watch redraws when a node moves, and stops on Ctrl-C", async () => {
    const watch = startSandboxctl(["status", "--watch"], env);
    try {
      await eventually("the first frame", async () => /worker-3 +gvisor +Progressing/.test(watch.stdout()), 30_000);
      await client.mergePatch("SandboxNode", "worker-3", { status: { phase: "Failed", conditions: [cond("Progressing", "False", "Failed"), cond("Degraded", "True", "ApplyFailed", "restart failed")] } }, { subresource: "status" });
      await eventually("a frame showing worker-3 Degraded", async () => /worker-3 +gvisor +Degraded +ApplyFailed/.test(watch.stdout()), 30_000);
    } finally {
      watch.child.kill("SIGINT");
    }
    const r = await watch.done;
    assert.equal(r.code, 0, r.stderr);
  });
});
