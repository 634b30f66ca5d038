// The DaemonSet exemption with the real DaemonSet controller: kube-controller-manager (daemonset
// controller only, with service-account credentials as kubeadm runs it) creates a node agent's pod
// through the real webhook in an enforce namespace; it is left alone, or refused once exempting is off.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import type { Pod } from "../../src/admission/policy.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.js";
import { ensureBinary } from "../harness/binaries.js";
import { onExit } from "../harness/exit-hooks.js";
import { eventually } from "../harness/cluster.js";
import { configSpec, namespace, setupCluster, startTestWebhook, waitWebhookActive, stopWebhookEnv } from "./admission-fixture.js";

const ANN = "sandboxing.dev/admission";

const nodeAgent = (name: string, ns: string): AnyObject =>
  ({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: ns },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          hostNetwork: true,
          // As CNI DaemonSets do: the apiserver taints a new Node not-ready until its kubelet reports.
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: "agent", image: "registry.example/cni:1", securityContext: { privileged: true }, volumeMounts: [{ name: "bin", mountPath: "/host/opt/cni/bin" }] }],
          volumes: [{ name: "bin", hostPath: { path: "/opt/cni/bin" } }],
        },
      },
    },
  }) as AnyObject;

describe("DaemonSet pods created by the real DaemonSet controller", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook;
  let kcm: ChildProcess | undefined;
  let removeHook: (() => void) | undefined;

  before(async () => {
    // A private control plane: a second DaemonSet controller must not join a shared cluster's.
    cp = await startControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    await setupCluster(client, configSpec());
    for (const ns of ["node-agents", "node-agents-strict"]) await client.apply(namespace(ns, "enforce"));
    // A Node for the DaemonSet to cover (no kubelet: the pod is only created, never run).
    await client.apply({ apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } } as AnyObject);
    webhook = await startTestWebhook(webhookClient);
    await waitWebhookActive(client);
    const bin = await ensureBinary("kube-controller-manager");
    const log = openSync(join(cp.dir, "kcm-daemonset.log"), "a");
    kcm = spawn(bin, [`--kubeconfig=${cp.kubeconfigPath}`, "--controllers=daemonset", "--use-service-account-credentials=true", "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0"], { stdio: ["ignore", log, log], cwd: cp.dir });
    closeSync(log);
    const child = kcm;
    removeHook = onExit(() => child.kill("SIGKILL"));
  });
  after(async () => {
    if (kcm && kcm.exitCode === null) {
      const exited = new Promise((r) => kcm!.once("exit", r));
      kcm.kill("SIGTERM");
      await exited;
    }
    removeHook?.();
    await stopWebhookEnv({ webhook, webhookClient, client, cp });
  });

  const kcmLog = () => readFileSync(join(cp.dir, "kcm-daemonset.log"), "utf8").split("\n").filter((l) => /daemon|error|fail|node-a|cni/i.test(l)).slice(-40).join("\n");

  it("a node agent's pod in an enforce namespace is neither sandboxed nor refused", async () => {
    await client.apply(nodeAgent("cni", "node-agents"));
    const [p] = await eventually(
      "the DaemonSet controller created the pod",
      async () => {
        const pods = (await client.list<Pod & KubeObject>("Pod", { namespace: "node-agents" })).items;
        return pods.length > 0 && pods;
      },
      60_000,
      500,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\nDaemonSet: ${JSON.stringify((await client.get("DaemonSet", "cni", "node-agents")) as unknown)}\nkube-controller-manager log:\n${kcmLog()}`, { cause: e });
    });
    assert.equal(p!.metadata.ownerReferences?.[0]?.kind, "DaemonSet");
    assert.equal(p!.spec.runtimeClassName ?? undefined, undefined, "not mutated into a sandbox");
    assert.equal(p!.metadata.annotations?.[ANN], undefined, "not annotated");
    assert.equal(p!.spec.hostNetwork, true);
  });

  it("with spec.podPolicy.exemptions.daemonSets false the controller's create is refused, naming the fields", async () => {
    await client.mergePatch("SandboxConfig", "cluster", { spec: { podPolicy: { exemptions: { daemonSets: false } } } });
    await eventually("the webhook saw the change", async () => webhook.admission.config()?.podPolicy?.exemptions?.daemonSets === false, 30_000, 100);
    await client.apply(nodeAgent("cni-strict", "node-agents-strict"));
    const event = await eventually(
      "FailedCreate event",
      async () => {
        const events = (await client.list<KubeObject & { reason?: string; message?: string }>("Event", { namespace: "node-agents-strict" })).items;
        return events.find((e) => e.reason === "FailedCreate");
      },
      90_000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nkube-controller-manager log:\n${kcmLog()}`, { cause: e });
    });
    assert.match(event.message ?? "", /admission webhook "enforce\.pods\.sandboxing\.dev" denied the request: pod cni-strict-\S* in namespace node-agents-strict: spec\.hostNetwork, spec\.volumes\[0\]\.hostPath \(volume bin, path \/opt\/cni\/bin\) reach the host even from a sandbox/);
    assert.equal((await client.list("Pod", { namespace: "node-agents-strict" })).items.length, 0);
  });
});
