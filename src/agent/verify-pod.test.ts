// The pure parts of Pod verification: the Pod we create, how its output is read, when it is stuck;
// and the verification RuntimeClasses it runs on. The Pods themselves run in the cluster tier.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { desiredRuntimeClasses, verifyClassName, verifyRuntimeClasses } from "../render/desired-runtimeclasses.js";
import { parseVerifyOutput, stuckReason, verifyPod } from "./verify-pod.js";

const opts = { kube: undefined as never, namespace: "sandbox-operator-system", nodeName: "node-a", image: "127.0.0.1:5000/busybox@sha256:" + "a".repeat(64) };

describe("verification Pods", () => {
  it("binds to the agent's node, uses the handler's verification class, never restarts, tolerates every taint", () => {
    const p = verifyPod(opts, "sandboxed") as unknown as { metadata: { name: string; labels: Record<string, string> }; spec: Record<string, unknown> & { containers: Array<{ image: string }> } };
    assert.equal(p.spec.nodeName, "node-a");
    assert.equal(p.spec.runtimeClassName, "sandboxing-verify-sandboxed");
    assert.equal(p.spec.restartPolicy, "Never");
    assert.deepEqual(p.spec.tolerations, [{ operator: "Exists" }]);
    assert.equal(p.spec.automountServiceAccountToken, false);
    assert.equal(p.spec.containers[0]!.image, opts.image);
    assert.equal(p.metadata.labels["sandboxing.dev/verify-node"], "node-a");
    assert.match(p.metadata.name, /^sandbox-verify-sandboxed-[0-9a-f]{8}$/);
  });

  it("runs sh from the operator image's verification tools first, then any image's usual PATH; pull policy and secrets as set", () => {
    type C = { command: string[]; env: Array<{ name: string; value: string }>; imagePullPolicy: string };
    const p = verifyPod({ ...opts, imagePullPolicy: "Always", imagePullSecrets: ["mirror-creds"] }, "gvisor") as unknown as { spec: { imagePullSecrets: unknown; containers: C[] } };
    const c = p.spec.containers[0]!;
    assert.equal(c.command[0], "sh");
    assert.deepEqual(c.env, [{ name: "PATH", value: "/usr/lib/sandbox-operator/verify:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }]);
    assert.equal(c.imagePullPolicy, "Always");
    assert.deepEqual(p.spec.imagePullSecrets, [{ name: "mirror-creds" }]);
    const d = verifyPod(opts, "gvisor") as unknown as { spec: Record<string, unknown> & { containers: C[] } };
    assert.equal(d.spec.containers[0]!.imagePullPolicy, "IfNotPresent");
    assert.equal("imagePullSecrets" in d.spec, false);
  });

  it("the runtime's default handler is a Pod without runtimeClassName; long names stay valid", () => {
    const plain = verifyPod(opts, "") as unknown as { metadata: { name: string }; spec: Record<string, unknown> };
    assert.equal("runtimeClassName" in plain.spec, false);
    assert.match(plain.metadata.name, /^sandbox-verify-default-/);
    const long = verifyPod(opts, "x".repeat(80)) as unknown as { metadata: { name: string } };
    assert.ok(long.metadata.name.length <= 63 && !long.metadata.name.endsWith("-"));
  });

  it("reads kernel and first kernel-log line from the script's output", () => {
    assert.deepEqual(parseVerifyOutput("kernel=4.4.0\ndmesg=[    0.000000] Starting gVisor...\n"), { kernel: "4.4.0", dmesg: "[    0.000000] Starting gVisor..." });
    assert.deepEqual(parseVerifyOutput("kernel=6.1.0\ndmesg=\n"), { kernel: "6.1.0", dmesg: undefined });
    assert.deepEqual(parseVerifyOutput(""), { kernel: undefined, dmesg: undefined });
  });

  it("a Pod that cannot run is reported at once: image pull errors, a broken handler's sandbox event", () => {
    const waiting = (reason: string) => ({ metadata: { name: "p" }, status: { phase: "Pending", containerStatuses: [{ name: "verify", state: { waiting: { reason, message: "m" } } }] } });
    for (const r of ["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"]) assert.deepEqual(stuckReason(waiting(r), []), { text: `${r}: m`, imagePull: true }, r);
    assert.deepEqual(stuckReason(waiting("CreateContainerError"), []), { text: "CreateContainerError: m", imagePull: false });
    assert.equal(stuckReason(waiting("ContainerCreating"), []), undefined, "still starting");
    const ev = { metadata: { name: "e" }, type: "Warning", reason: "FailedCreatePodSandBox", message: 'no runtime for "kata" is configured' };
    assert.deepEqual(stuckReason({ metadata: { name: "p" }, status: { phase: "Pending" } }, [ev]), { text: 'FailedCreatePodSandBox: no runtime for "kata" is configured', imagePull: false });
    assert.equal(stuckReason({ metadata: { name: "p" }, status: { phase: "Pending" } }, [{ ...ev, type: "Normal", reason: "Scheduled" }]), undefined);
    // Seen on the cluster tier right after the agent restarted containerd: the kubelet retries, so wait.
    const lag = { ...ev, message: 'Failed to create pod sandbox: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory"' };
    assert.equal(stuckReason({ metadata: { name: "p" }, status: { phase: "Pending" } }, [lag]), undefined, "the runtime restarting is not a broken handler");
    assert.equal(stuckReason({ metadata: { name: "p" }, status: { phase: "Pending" } }, [lag, ev])?.text, 'FailedCreatePodSandBox: no runtime for "kata" is configured');
  });
});

describe("verification RuntimeClasses", () => {
  const spec = { runtimes: { allowed: ["gvisor" as const] } };
  it("one per published class: same handler and overhead, no scheduling gate, marked for verification", () => {
    const classes = desiredRuntimeClasses(spec as never);
    const verify = verifyRuntimeClasses(classes);
    assert.deepEqual(verify.map((c) => [c.metadata.name, c.handler]), classes.map((c) => [verifyClassName(c.handler), c.handler]));
    for (const [i, v] of verify.entries()) {
      assert.equal(v.scheduling, undefined);
      assert.deepEqual(v.overhead, classes[i]!.overhead);
      assert.equal(v.metadata.labels["sandboxing.dev/purpose"], "verify");
      assert.equal(v.metadata.labels["app.kubernetes.io/managed-by"], "sandbox-operator");
    }
  });
});
