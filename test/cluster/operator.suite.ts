// Cluster tier, the product as a user installs it: the image `npm run build:image` builds, pushed to
// the registry the node pulls from; `kubectl apply --server-side -f deploy/sandbox-operator.yaml`;
// `kubectl apply -f examples/sandboxconfig.yaml`; the operator runs as pods and sandboxes pods.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { dirname, join } from "node:path";
import { before, describe, it } from "node:test";
import { readImageLock, repoRoot } from "../../src/manifests/image-lock.js";
import { AGENT, CONTROLLER, LEADER_LEASE, NAMESPACE, WEBHOOK } from "../../src/manifests/names.js";
import type { KubeCluster } from "../harness/kube-cluster.js";
import { eventually as eventuallyEvery } from "../harness/cluster.js";
import { pushOperatorImage } from "../harness/operator-image.js";
import { BLOCK_BEGIN } from "../../src/render/node/containerd-runtimes.js";
import { apply, deletePods, getJson, logsMatching, operatorDiag, pod, waitPhase, type ClusterHandle } from "./helpers.js";

const ROOT = repoRoot();
const CONFIG = "/etc/containerd/config.toml";
const DROPIN = "/etc/containerd/conf.d/50-sandbox-operator.toml";

/** Where our handlers live on this node: containerd 2's owned drop-in, or 1.6's managed block in config.toml. */
function ourRuntimeConfig(c: KubeCluster): string {
  const p = c.containerd === "2" ? DROPIN : CONFIG;
  if (!existsSync(c.node.hostPath(p))) return "";
  const text = readFileSync(c.node.hostPath(p), "utf8");
  return c.containerd === "2" ? text : text.includes(BLOCK_BEGIN) ? text.slice(text.indexOf(BLOCK_BEGIN)) : "";
}
const SANDBOX_SCRIPT = "uname -r; dmesg | head -n 1; while :; do echo hello-from-$(hostname) | nc -l -p 8080; done";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Obj {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown> & { runtimeClassName?: string; holderIdentity?: string };
  status?: Record<string, unknown> & { conditions?: Condition[]; phase?: string; podIP?: string };
}

const cond = (o: Obj, type: string) => o.status?.conditions?.find((c) => c.type === type);
/** Polls every 500 ms (kubectl per poll), 2 minutes unless told. */
const eventually = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000) => eventuallyEvery(what, fn, timeoutMs, 500);


export function operatorSuite(cluster: ClusterHandle): void {
  describe("sandbox-operator installed as a user installs it (kubectl, image from a registry)", { concurrency: false }, () => {
    let configBefore: Buffer;
    const ourLabels = async () => {
      const n = await getJson<Obj>(cluster(), "node", cluster().nodeName);
      return Object.fromEntries(Object.entries(n.metadata.labels ?? {}).filter(([k]) => k.startsWith("sandboxing.dev/")));
    };
    const config = async () => getJson<Obj>(cluster(), "sandboxconfig", "cluster");
    const diag = () => operatorDiag(cluster());
    /** Sets spec.variants to gVisor variants of these names (kubectl patch, as an admin would). */
    const setVariants = (...names: string[]) =>
      cluster().kubectl(["patch", "sandboxconfig", "cluster", "--type=merge", "-p", JSON.stringify({ spec: { variants: names.map((name) => ({ name, backend: "gvisor" })) } })]);
    /** Waits until this node's SandboxNode is Degraded with `reason`; on timeout the error carries diag(). */
    const nodeDegraded = (reason: string, timeoutMs: number) =>
      eventually(`SandboxNode Degraded ${reason}`, async () => {
        const d = cond(await getJson<Obj>(cluster(), "sandboxnode", cluster().nodeName), "Degraded");
        return d?.status === "True" && d.reason === reason ? d : undefined;
      }, timeoutMs).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diag()}`, { cause: e });
      });
    const readyAndLabelledAgain = () =>
      eventually("Ready and labelled again", async () => (await ourLabels())["sandboxing.dev/runtime.sandboxed"] === "true" && cond(await config(), "Ready")?.status === "True", 180_000);

    before(async () => {
      const c = cluster();
      // Exactly what `npm run build:image` builds, at the digest the shipped manifests pin.
      const pushed = await pushOperatorImage(c.registry);
      assert.equal(pushed.ref, `${c.registry.host}/sandbox-operator@${readImageLock(ROOT).digest}`);
      configBefore = readFileSync(c.node.hostPath(CONFIG));
    });

    it("kubectl apply --server-side -f deploy/sandbox-operator.yaml: controller (2 replicas, one leader) and webhook run as pods", async () => {
      const c = cluster();
      await c.kubectl(["apply", "--server-side", "-f", join(ROOT, "deploy", "sandbox-operator.yaml")]);
      for (const d of [CONTROLLER, WEBHOOK]) {
        await c.kubectl(["-n", NAMESPACE, "rollout", "status", `deployment/${d}`, "--timeout=240s"], { timeoutMs: 250_000 }).catch(async (e: Error) => {
          throw new Error(`${e.message}\n${await diag()}`, { cause: e });
        });
      }
      const pods = await getJson<{ items: Obj[] }>(c, "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=controller");
      assert.equal(pods.items.filter((p) => p.status?.phase === "Running").length, 2, "two controller replicas");
      const lease = await eventually("a controller leader", async () => {
        const l = await getJson<Obj>(c, "lease", LEADER_LEASE, "-n", NAMESPACE);
        return l.spec?.holderIdentity ? l : undefined;
      }, 60_000);
      assert.ok(pods.items.some((p) => lease.spec!.holderIdentity!.startsWith(p.metadata.name)), `leader ${lease.spec!.holderIdentity} is one of the controller pods`);
    });

    it("kubectl apply -f examples/sandboxconfig.yaml: the agent pod configures containerd, verifies with Pods, the node is labelled, RuntimeClasses published", async () => {
      const c = cluster();
      await c.kubectl(["apply", "-f", join(ROOT, "examples", "sandboxconfig.yaml")]);
      await eventually("SandboxConfig Ready", async () => cond(await config(), "Ready")?.status === "True", 300_000).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diag()}`, { cause: e });
      });
      const ds = await getJson<Obj>(c, "daemonset", AGENT, "-n", NAMESPACE);
      assert.equal(ds.status?.numberReady, 1, "the agent DaemonSet runs on the node");
      const sn = await getJson<Obj & { status: { handlers: Array<{ name: string; verified: boolean; kernel?: string }> } }>(c, "sandboxnode", c.nodeName);
      assert.equal(sn.status.phase, "Applied");
      for (const h of sn.status.handlers) {
        assert.ok(h.verified, `${h.name} verified`);
        assert.match(h.kernel ?? "", /gVisor/, `${h.name} ran under gVisor`);
      }
      assert.deepEqual(await ourLabels(), { "sandboxing.dev/agent": "true", "sandboxing.dev/runtime.gvisor": "true", "sandboxing.dev/runtime.sandboxed": "true" });
      const rcs = (await c.kubectl(["get", "runtimeclass", "-o", "name"])).trim().split("\n");
      for (const rc of ["sandboxed", "gvisor", "kata", "sandboxing-verify-sandboxed"]) assert.ok(rcs.includes(`runtimeclass.node.k8s.io/${rc}`), `RuntimeClass ${rc}: ${rcs.join(", ")}`);
      assert.match(ourRuntimeConfig(c), /sandboxed/, `our handlers are in containerd ${c.containerd}'s config (drop-in on 2.x, managed block on 1.6)`);
      const left = await c.kubectl(["-n", NAMESPACE, "get", "pods", "-l", "sandboxing.dev/verify=true", "-o", "name"]);
      assert.equal(left.trim(), "", "verification Pods are deleted after use");
    });

    it("a runtimeClassName: sandboxed pod shows the gVisor kernel in kubectl logs, a runc pod the host's, and they talk over the pod network", async () => {
      const c = cluster();
      await apply(c, pod("sbx", c, { runtimeClassName: "sandboxed", command: ["sh", "-c", SANDBOX_SCRIPT], restartPolicy: "Always" }));
      await apply(c, pod("plain", c, { command: ["sh", "-c", "uname -r; sleep 3600"] }));
      await waitPhase(c, "sbx", "Running", 120);
      await waitPhase(c, "plain", "Running", 120);
      const sbxLog = await logsMatching(c, "sbx", /Starting gVisor/);
      assert.doesNotMatch(sbxLog.split("\n")[0]!, new RegExp(release().replace(/\./g, "\\.")), "not the host kernel");
      assert.equal((await logsMatching(c, "plain", /\S/)).trim(), release(), "runc shows the host kernel");
      const sbx = await getJson<Obj>(c, "pod/sbx");
      assert.equal(sbx.spec?.nodeName, c.nodeName, "placed by the scheduler on the verified node");
      const out = await c.kubectl(["exec", "plain", "--", "sh", "-c", `nc -w 5 ${sbx.status!.podIP} 8080 </dev/null`]);
      assert.equal(out.trim(), "hello-from-sbx");
    });

    it("in an enforce namespace the webhook (a pod behind its Service) sets runtimeClassName: sandboxed, and a privileged pod runs only sandboxed", async () => {
      const c = cluster();
      await apply(c, { apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant", labels: { "sandboxing.dev/policy": "enforce" } } });
      const inTenant = (name: string, extra: Record<string, unknown> = {}) => {
        const p = pod(name, c, { command: ["sh", "-c", "uname -r; dmesg | head -n 1; sleep 3600"] }) as { metadata: Record<string, unknown>; spec: { containers: Array<Record<string, unknown>> } };
        p.metadata.namespace = "tenant";
        Object.assign(p.spec.containers[0]!, extra);
        return p;
      };
      await apply(c, inTenant("untrusted"));
      await apply(c, inTenant("superpriv", { securityContext: { privileged: true } }));
      for (const name of ["untrusted", "superpriv"]) {
        const p = await getJson<Obj>(c, `pod/${name}`, "-n", "tenant");
        assert.equal(p.spec?.runtimeClassName, "sandboxed", `${name}: the webhook set the RuntimeClass`);
        await c.kubectl(["-n", "tenant", "wait", `pod/${name}`, "--for=jsonpath={.status.phase}=Running", "--timeout=120s"], { timeoutMs: 130_000 });
        await eventually(`${name} logs show gVisor`, async () => /Starting gVisor/.test(await c.kubectl(["-n", "tenant", "logs", name])), 30_000);
      }
    });

    it("a running sandboxed pod survives a restart of the agent pod and a config change that restarts containerd", async () => {
      const c = cluster();
      const before = await getJson<Obj & { status: { containerStatuses: Array<{ containerID: string; restartCount: number }> } }>(c, "pod/sbx");
      const agentPod = (await c.kubectl(["-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=agent", "-o", "name"])).trim();
      await c.kubectl(["-n", NAMESPACE, "delete", agentPod, "--wait=true", "--timeout=90s"], { timeoutMs: 100_000 });
      await c.kubectl(["-n", NAMESPACE, "rollout", "status", `daemonset/${AGENT}`, "--timeout=120s"], { timeoutMs: 130_000 });
      const mainPid = async () => (await c.node.systemctl("show", "--property=MainPID", "--value", "containerd.service")).stdout.trim();
      const pidBefore = await mainPid();
      await setVariants("gvisor-tenant");
      await eventually("the variant verified and labelled", async () => (await ourLabels())["sandboxing.dev/runtime.gvisor-tenant"] === "true" && cond(await config(), "Ready")?.status === "True", 240_000).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diag()}`, { cause: e });
      });
      assert.notEqual(await mainPid(), pidBefore, "the agent restarted containerd through the node's systemd (new MainPID)");
      const now = await getJson<typeof before>(c, "pod/sbx");
      assert.equal(now.status.phase, "Running");
      assert.equal(now.status.containerStatuses[0]!.containerID, before.status.containerStatuses[0]!.containerID, "same container");
      assert.equal(now.status.containerStatuses[0]!.restartCount, 0);
      const out = await c.kubectl(["exec", "plain", "--", "sh", "-c", `nc -w 5 ${before.status.podIP} 8080 </dev/null`]);
      assert.equal(out.trim(), "hello-from-sbx", "still serving");
    });

    it("deleting the agent pod in the middle of an apply leaves the node working: the new pod finishes it", async () => {
      const c = cluster();
      const agentPod = (await c.kubectl(["-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=agent", "-o", "name"])).trim();
      await setVariants("gvisor-tenant", "gvisor-mid");
      // Killed while its verification Pod runs: the files are written and the runtime restarted, so the
      // new pod must roll the interrupted transaction back, clean the Pod up and apply again. (Killed
      // earlier, during the payload pull, there would be no transaction to recover.)
      // A Pod still terminating from an earlier verification does not count: the apply must be verifying.
      await eventuallyEvery("the agent verifying with a Pod", async () => {
        if ((await getJson<Obj>(c, "sandboxnode", c.nodeName)).status?.phase !== "Verifying") return false;
        const pods = await getJson<{ items: Array<{ metadata: { deletionTimestamp?: string } }> }>(c, "pods", "-n", NAMESPACE, "-l", "sandboxing.dev/verify=true");
        return pods.items.some((p) => !p.metadata.deletionTimestamp);
      }, 120_000, 100);
      // No grace: the container is killed at once.
      await c.kubectl(["-n", NAMESPACE, "delete", agentPod, "--grace-period=0", "--force", "--wait=true", "--timeout=60s"], { timeoutMs: 70_000 });
      await eventually("the variant verified after the agent's restart", async () => (await ourLabels())["sandboxing.dev/runtime.gvisor-mid"] === "true" && cond(await config(), "Ready")?.status === "True", 240_000).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diag()}`, { cause: e });
      });
      const now = (await c.kubectl(["-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=agent", "-o", "name"])).trim();
      assert.notEqual(now, agentPod, "a new agent pod");
      for (const p of ["sbx", "plain"]) assert.equal((await getJson<Obj>(c, `pod/${p}`)).status?.phase, "Running", `${p} keeps running`);
      // The new agent deletes the Pod the killed one left; the kubelet takes a moment to remove it.
      await eventually("no verification Pod of the killed agent left", async () => (await c.kubectl(["-n", NAMESPACE, "get", "pods", "-l", "sandboxing.dev/verify=true", "-o", "name"])).trim() === "", 60_000);
    });

    it("a runtime restart that fails leaves the node Degraded with the error and unlabelled; pods keep running; it recovers when the unit is fixed", async () => {
      const c = cluster();
      // An admin's unit drop-in that makes `systemctl restart containerd` refuse (containerd keeps running).
      const refuse = "/etc/systemd/system/containerd.service.d/99-refuse-manual.conf";
      mkdirSync(dirname(c.node.hostPath(refuse)), { recursive: true });
      writeFileSync(c.node.hostPath(refuse), "[Unit]\nRefuseManualStart=yes\nRefuseManualStop=yes\n");
      await c.node.systemctl("daemon-reload");
      try {
        await setVariants("gvisor-tenant", "gvisor-mid", "gvisor-b");
        const degraded = await nodeDegraded("RuntimeRestartFailed", 180_000);
        assert.match(degraded.message, /containerd/, `the message names the unit: ${degraded.message}`);
        assert.match(degraded.message, /refuse|RefuseManual|dependency only/i, `the message carries systemd's error: ${degraded.message}`);
        await eventually("no runtime label on the Degraded node", async () => !Object.keys(await ourLabels()).some((k) => k.startsWith("sandboxing.dev/runtime.")), 60_000);
        const cfgDegraded = cond(await config(), "Degraded");
        assert.equal(cfgDegraded?.status, "True");
        assert.match(cfgDegraded?.message ?? "", new RegExp(c.nodeName));
        for (const p of ["sbx", "plain"]) assert.equal((await getJson<Obj>(c, `pod/${p}`)).status?.phase, "Running", `${p} keeps running`);
        assert.doesNotMatch(ourRuntimeConfig(c), /gvisor-b/, "the new config was rolled back");
      } finally {
        rmSync(c.node.hostPath(refuse), { force: true });
        await c.node.systemctl("daemon-reload");
      }
      // Back to the configuration the node runs: Ready and labelled again, no restart needed.
      await setVariants("gvisor-tenant", "gvisor-mid");
      await readyAndLabelledAgain();
    });

    it("a broken handler (runsc fails on the node) ends VerificationFailed: rolled back, Degraded with the kubelet's error, unlabelled; runc pods keep running", async () => {
      const c = cluster();
      // As if the node's gVisor broke: every call of the runsc the shim runs (runsc.toml's
      // binary_name: the installed payload version's) now fails.
      const runscToml = readFileSync(c.node.hostPath("/opt/sandbox-operator/etc/runsc.toml"), "utf8");
      const runsc = /binary_name = "([^"]+)"/.exec(runscToml)?.[1];
      assert.ok(runsc, `runsc.toml names the runsc it runs:\n${runscToml}`);
      await c.node.exec(["mount", "--bind", "/bin/false", runsc]);
      try {
        await setVariants("gvisor-tenant", "gvisor-mid", "gvisor-broken");
        const degraded = await nodeDegraded("VerificationFailed", 240_000);
        assert.match(degraded.message, /verification Pod .* cannot run: FailedCreatePodSandBox|verification Pod .* Failed/, `the kubelet's error for the verification Pod: ${degraded.message}`);
        await eventually("no runtime label on the Degraded node", async () => !Object.keys(await ourLabels()).some((k) => k.startsWith("sandboxing.dev/runtime.")), 60_000);
        assert.doesNotMatch(ourRuntimeConfig(c), /gvisor-broken/, "the new config was rolled back");
        assert.equal((await getJson<Obj>(c, "pod/plain")).status?.phase, "Running", "runc pods keep running");
        // The SandboxConfig's own conditions follow the node's status on the controller's next pass.
        await eventually("the SandboxConfig says Degraded", async () => cond(await config(), "Degraded")?.status === "True", 60_000);
      } finally {
        await c.node.exec(["umount", runsc]);
      }
      await setVariants("gvisor-tenant", "gvisor-mid");
      await readyAndLabelledAgain();
    });

    it("a verification image the node cannot pull ends VerificationImagePullFailed naming node and image; removing the field verifies with the agent's own image again", async () => {
      const c = cluster();
      // Pinned by digest, in the cluster's own registry, and absent from it.
      const image = `${c.registry.host}/sandbox-operator/absent@sha256:${"0".repeat(64)}`;
      await c.kubectl(["patch", "sandboxconfig", "cluster", "--type=merge", "-p", JSON.stringify({ spec: { verification: { image } } })]);
      const degraded = await nodeDegraded("VerificationImagePullFailed", 180_000);
      assert.match(degraded.message, new RegExp(`node ${c.nodeName} cannot pull the verification image ${image.replace(/[.]/g, "\\.")} \\((ErrImagePull|ImagePullBackOff)`), degraded.message);
      assert.equal((await getJson<Obj>(c, "pod/plain")).status?.phase, "Running", "runc pods keep running");
      await c.kubectl(["patch", "sandboxconfig", "cluster", "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/verification" }])]);
      await readyAndLabelledAgain();
    });

    it("uninstall as the docs say: blocked while a sandboxed pod runs (named), then complete; containerd's config byte-identical; nothing of ours left", async () => {
      const c = cluster();
      await c.kubectl(["-n", "tenant", "delete", "pod", "untrusted", "superpriv", "--wait=true", "--timeout=60s"], { timeoutMs: 70_000 });
      await c.kubectl(["delete", "sandboxconfig", "cluster", "--wait=false"]);
      const blocked = await eventually("uninstall blocked by pods", async () => {
        const p = cond(await config(), "Progressing");
        return p?.reason === "UninstallBlockedByPods" ? p : undefined;
      }, 60_000);
      assert.match(blocked.message, /default\/sbx/, "the status names the pod");
      await deletePods(c, "sbx");
      await c.kubectl(["wait", "--for=delete", "sandboxconfig/cluster", "--timeout=240s"], { timeoutMs: 250_000 }).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diag()}`, { cause: e });
      });
      await c.kubectl(["delete", "-f", join(ROOT, "deploy", "sandbox-operator.yaml"), "--ignore-not-found", "--wait=true", "--timeout=180s"], { timeoutMs: 190_000 });
      assert.ok(readFileSync(c.node.hostPath(CONFIG)).equals(configBefore), "config.toml byte-identical to before the install");
      assert.equal(existsSync(c.node.hostPath(DROPIN)), false, "drop-in removed");
      assert.deepEqual(await ourLabels(), {}, "no label of ours on the node");
      const rcs = JSON.parse(await c.kubectl(["get", "runtimeclass", "-o", "json"])) as { items: Obj[] };
      assert.deepEqual(rcs.items.filter((r) => r.metadata.labels?.["app.kubernetes.io/managed-by"] === "sandbox-operator").map((r) => r.metadata.name), []);
      assert.equal((await c.kubectl(["get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"])).trim(), "", "namespace gone");
      assert.equal((await c.kubectl(["get", "crd", "-o", "name"])).includes("sandboxing.dev"), false, "CRDs gone");
      // runc pods still start, and the one that ran through it all is still running.
      await apply(c, pod("after", c, { command: ["sh", "-c", "uname -r"] }));
      await waitPhase(c, "after", "Succeeded", 90);
      assert.equal((await getJson<Obj>(c, "pod/plain")).status?.phase, "Running");
      await deletePods(c, "after", "plain");
      await c.kubectl(["delete", "namespace", "tenant", "--wait=true", "--timeout=60s"], { timeoutMs: 70_000 });
    });
  });
}
