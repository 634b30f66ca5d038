// Proves the worked examples of docs/use-cases/*.md on a real kube-apiserver with the real
// admission webhook: every SandboxConfig is applied (or refused) with the real `kubectl apply -f` as
// the page says, the controller's RuntimeClasses for it are published, and every pod, as kubectl
// reads the file, gets the outcome the page claims (server-side dry-run, so the webhook and the
// RuntimeClass admission run but nothing is stored).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { KubeClient, type AnyObject } from "../../src/kube/client.js";
import type { Pod } from "../../src/admission/policy.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { desiredRuntimeClasses, MANAGED_BY, MANAGED_BY_LABEL } from "../../src/controller/desired-runtimeclasses.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { kubectl, kubectlOk, kubectlRead } from "../harness/kubectl.js";
import { OPERATOR_NS, createPod, namespace, runtimeClass, startTestWebhook, waitWebhookActive, type CreateResult, stopWebhookEnv } from "./admission-fixture.js";

const DIR = join(repoRoot(), "examples", "use-cases");
/** The path the pages' `kubectl apply -f` commands name. */
const docPath = (file: string) => `examples/use-cases/${file}`;
const ANN = "sandboxing.dev/admission";

/**
 * The decision recorded for a pod that got the general class injected. The apiserver reinvokes the
 * webhook (reinvocationPolicy IfNeeded) after the RuntimeClass admission adds the class's overhead,
 * and the second call sees the class already set, so the record may read "is a sandbox".
 */
const INJECTED = (rest?: string) => new RegExp(`^enforce: runtimeClassName sandboxed (injected|is a sandbox)${rest ? `; ${rest.replace(/[()]/g, "\\$&")}` : ""}$`);

/** The fields the RuntimeClass admission adds to a pod. */
interface PodSchedulingSpec {
  nodeSelector?: Record<string, string>;
  tolerations?: Array<{ key?: string; value?: string }>;
  overhead?: Record<string, string>;
}

/** What a page claims for one pod: stored (201) with these fields, or refused (403) with this message. */
interface PodClaim {
  status: 201 | 403;
  runtimeClassName?: string | null;
  annotation?: string | RegExp;
  message?: RegExp;
  warnings?: string[];
  check?: (pod: { spec: PodSchedulingSpec }) => void;
}

describe("docs/use-cases examples on a real apiserver + webhook", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook;
  const covered = new Set<string>();
  /** The file's objects as kubectl reads them (YAML 1.1). */
  const load = (file: string) => kubectlRead(cp.kubeconfigPath, docPath(file));

  /** `kubectl apply -f` of a SandboxConfig file, and the RuntimeClasses the controller would publish for it. */
  async function useConfig(file: string): Promise<SandboxConfigSpec> {
    covered.add(file);
    // Each page starts from its own config, as a reader would (no controller runs, so no finalizer).
    if (await client.getOrNull("SandboxConfig", "cluster")) {
      await client.delete("SandboxConfig", "cluster");
      await eventually("SandboxConfig cluster deleted", async () => (await client.getOrNull("SandboxConfig", "cluster")) === null, 10_000);
    }
    await kubectlOk(cp.kubeconfigPath, ["apply", "-f", docPath(file)]);
    const spec = (await client.get<AnyObject>("SandboxConfig", "cluster")).spec as SandboxConfigSpec;
    const classes = desiredRuntimeClasses(spec);
    const names = new Set(classes.map((c) => c.metadata.name));
    for (const rc of (await client.list<AnyObject>("RuntimeClass")).items) {
      if (rc.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY && !names.has(rc.metadata.name)) await client.delete("RuntimeClass", rc.metadata.name);
    }
    for (const rc of classes) await client.apply(rc as unknown as AnyObject);
    return spec;
  }

  /** Applies a file: Namespaces with SSA; Pods by server-side dry-run until the claim holds (the webhook's caches follow the config within seconds). */
  async function applyPods(file: string, claims: Record<string, PodClaim>): Promise<void> {
    covered.add(file);
    const objects = await load(file);
    const pods = objects.filter((d) => {
      if (d.kind === "Pod") return true;
      assert.equal(d.kind, "Namespace", `${file}: only Namespaces and Pods expected`);
      return false;
    });
    for (const d of objects) if (d.kind === "Namespace") await client.apply(d);
    assert.deepEqual(pods.map((p) => p.metadata.name).sort(), Object.keys(claims).sort(), `${file}: a claim per pod`);
    for (const p of pods) await holds(`${file} pod ${p.metadata.name}`, () => createPod(client, p as Pod & AnyObject, true), claims[p.metadata.name]!);
  }

  async function holds(what: string, attempt: () => Promise<CreateResult>, claim: PodClaim): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await attempt();
      try {
        assert.equal(r.status, claim.status, `${what}: ${r.message ?? ""}`);
        if (claim.message) assert.match(r.message ?? "", claim.message);
        if (r.obj) {
          if (claim.runtimeClassName !== undefined) assert.equal(r.obj.spec.runtimeClassName ?? null, claim.runtimeClassName, `${what}: runtimeClassName`);
          const ann = r.obj.metadata.annotations?.[ANN];
          if (claim.annotation instanceof RegExp) assert.match(ann ?? "", claim.annotation);
          else if (claim.annotation !== undefined) assert.equal(ann, claim.annotation, `${what}: ${ANN}`);
          if (claim.warnings) assert.deepEqual(r.warnings, claim.warnings, `${what}: warnings`);
          claim.check?.(r.obj as unknown as { spec: PodSchedulingSpec });
        }
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  }

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    await installCrds(client);
    await client.apply(namespace(OPERATOR_NS));
    // The host runtime's own class, which many clusters have; not ours.
    await client.apply(runtimeClass("runc", false));
    webhook = await startTestWebhook(webhookClient);
    await client.apply(namespace("probe", "enforce"));
    await useConfig("super-privileged/sandboxconfig.yaml");
    await waitWebhookActive(client, "probe");
  });
  after(() => stopWebhookEnv({ webhook, webhookClient, client, cp }));

  it("custom kernel: the Kata variant with kernelParams is accepted, its pod admitted; gVisor kernelParams are refused", async () => {
    await useConfig("custom-kernel/sandboxconfig.yaml");
    await applyPods("custom-kernel/pod.yaml", { solver: { status: 201, runtimeClassName: "kata-hugepages" } });
    covered.add("custom-kernel/gvisor-kernel-params.refused.yaml");
    const refused = await kubectl(cp.kubeconfigPath, ["apply", "-f", docPath("custom-kernel/gvisor-kernel-params.refused.yaml")]);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /The SandboxConfig "cluster" is invalid: .*vcpus, memory and kernelParams configure a Kata guest VM/);
    const stored = (await client.get<AnyObject>("SandboxConfig", "cluster")).spec as SandboxConfigSpec;
    assert.deepEqual(stored.variants?.[0]?.kernelParams, ["hugepagesz=2M", "hugepages=1024", "transparent_hugepage=never"], "the refused config changed nothing");
  });

  it("exclusive hardware: the variants' RuntimeClasses pin the pods to the dedicated nodes (the VFIO one to those with the device), with their toleration and the overhead of their VM size", async () => {
    await useConfig("exclusive-hardware/sandboxconfig.yaml");
    await applyPods("exclusive-hardware/pod.yaml", {
      "trading-engine": {
        status: 201,
        runtimeClassName: "kata-dedicated",
        check: (pod) => {
          assert.equal(pod.spec.nodeSelector?.["sandboxing.dev/runtime.kata-dedicated"], "true");
          assert.ok((pod.spec.tolerations ?? []).some((t) => t.key === "dedicated" && t.value === "sandbox"), JSON.stringify(pod.spec.tolerations));
          // 320Mi for Kata QEMU + the memmap of 14 extra GiB of guest RAM (224Mi) + 7 extra vCPUs (14Mi).
          assert.deepEqual(pod.spec.overhead, { cpu: "250m", memory: "558Mi" });
        },
      },
      "gpu-job": {
        status: 201,
        runtimeClassName: "kata-gpu",
        check: (pod) => {
          assert.equal(pod.spec.nodeSelector?.["sandboxing.dev/runtime.kata-gpu"], "true");
          assert.equal(pod.spec.nodeSelector?.["feature.node.kubernetes.io/pci-10de.present"], "true", "only nodes with the device");
          // 320Mi + memmap of 2 extra GiB (32Mi) + the 4 GiB boot memory VFIO pins (4096Mi).
          assert.deepEqual(pod.spec.overhead, { cpu: "250m", memory: "4448Mi" });
        },
      },
    });
  });

  it("super-privileged: a privileged pod is admitted into the general class; naming runc is refused", async () => {
    await useConfig("super-privileged/sandboxconfig.yaml");
    await applyPods("super-privileged/pods.yaml", {
      "net-tuner": { status: 201, runtimeClassName: "sandboxed", annotation: INJECTED("host privileges stay inside the sandbox (container tuner is privileged)") },
    });
    await applyPods("super-privileged/host-runtime.refused.yaml", {
      "net-tuner-on-host": { status: 403, message: /spec\.runtimeClassName runc is not a sandbox RuntimeClass; it also asks for host privileges \(container tuner is privileged\)/ },
    });
  });

  it("multi-tenant: defaultMode enforce sandboxes unlabelled tenant namespaces, off namespaces are untouched, opting out is refused", async () => {
    await useConfig("multi-tenant/sandboxconfig.yaml");
    covered.add("multi-tenant/namespaces.yaml");
    await kubectlOk(cp.kubeconfigPath, ["apply", "-f", docPath("multi-tenant/namespaces.yaml")]);
    await applyPods("multi-tenant/pods.yaml", {
      web: { status: 201, runtimeClassName: "sandboxed", annotation: INJECTED() },
      exporter: { status: 201, runtimeClassName: null, annotation: undefined, warnings: [] },
    });
    await applyPods("multi-tenant/opt-out.refused.yaml", { escape: { status: 403, message: /spec\.runtimeClassName runc is not a sandbox RuntimeClass.*one of sandboxed, kata, gvisor/ } });
  });

  it("FaaS: a function pod in the enforce namespace runs in the general class, which is gVisor only, without a memory warning", async () => {
    const spec = await useConfig("faas/sandboxconfig.yaml");
    assert.deepEqual(spec.runtimes.allowed, ["gvisor"]);
    await applyPods("faas/functions.yaml", {
      "fn-resize-42": { status: 201, runtimeClassName: "sandboxed", annotation: INJECTED(), warnings: [], check: (pod) => assert.deepEqual(pod.spec.overhead, { cpu: "100m", memory: "64Mi" }) },
    });
  });

  it("debug with eBPF: bpftrace with BPF/PERFMON/SYS_RESOURCE is admitted under kata", async () => {
    await useConfig("debug-ebpf/sandboxconfig.yaml");
    await applyPods("debug-ebpf/bpftrace.yaml", {
      bpftrace: { status: 201, runtimeClassName: "kata", annotation: "enforce: runtimeClassName kata is a sandbox; host privileges stay inside the sandbox (container bpftrace adds capabilities BPF,PERFMON,SYS_RESOURCE)" },
    });
  });

  it("legacy vulnerable code: admitted in its Kata variant; a hypervisor-path annotation is refused", async () => {
    await useConfig("legacy-vulnerable/sandboxconfig.yaml");
    await applyPods("legacy-vulnerable/app.yaml", { erp: { status: 201, runtimeClassName: "kata-legacy", annotation: "enforce: runtimeClassName kata-legacy is a sandbox" } });
    await applyPods("legacy-vulnerable/hypervisor-override.refused.yaml", {
      "erp-patched": { status: 403, message: /metadata\.annotations io\.katacontainers\.config\.hypervisor\.path reconfigure the sandbox and are not allowed/ },
    });
  });

  it("covers every file under examples/use-cases (runs last)", () => {
    const files = readdirSync(DIR).flatMap((d) => readdirSync(join(DIR, d)).map((f) => `${d}/${f}`));
    assert.deepEqual(files.filter((f) => !covered.has(f)).sort(), []);
    assert.equal(files.length, covered.size);
  });
});
