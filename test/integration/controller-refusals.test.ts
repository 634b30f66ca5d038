// The controller on a real apiserver when the apiserver refuses what it derives from a valid
// SandboxConfig: a ValidatingAdmissionPolicy refuses a RuntimeClass, then a Node label patch.
// Status must say Degraded with the apiserver's message (never Ready), without spinning.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AnyObject, KubeObject } from "../../src/kube/client.js";
import type { SimulatedAgent } from "../harness/simulated-agent.js";
import { cond, configObject, createNodes, eventually, getConfig, resetCluster, setupEnv, startAgent, startController, waitReady, type Config, type Env } from "./controller-helpers.js";

const POLICY = "test-refuse";

/** A VAP (Deny) on `resource` updates/creates whose object fails `expression`, with `message`. */
function refusePolicy(resource: "runtimeclasses" | "nodes", expression: string, message: string): AnyObject[] {
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: POLICY },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: { resourceRules: [{ apiGroups: [resource === "nodes" ? "" : "node.k8s.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: [resource] }] },
        validations: [{ expression, message }],
      },
    },
    { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding", metadata: { name: POLICY }, spec: { policyName: POLICY, validationActions: ["Deny"] } },
  ];
}

async function removePolicy(env: Env): Promise<void> {
  await env.client.delete("ValidatingAdmissionPolicyBinding", POLICY);
  await env.client.delete("ValidatingAdmissionPolicy", POLICY);
}

const degraded = (c: Config | null, reason: string, message: RegExp) => {
  const d = cond(c, "Degraded");
  const r = cond(c, "Ready");
  return d?.status === "True" && d.reason === reason && message.test(d.message) && r?.status === "False" && r.reason === reason && c!.status?.observedGeneration === c!.metadata.generation;
};

describe("controller: derived objects the apiserver refuses (issue 15 item 10)", { timeout: 180_000 }, () => {
  let env: Env;
  let agent: SimulatedAgent;
  let ctl: Awaited<ReturnType<typeof startController>>;
  /** While a refusal stands the controller retries it every 30 s, not in a loop: at most 2 requests in 4 s. */
  const assertNoSpin = async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const before = ctl.client.totalRequests;
    await new Promise((r) => setTimeout(r, 4000));
    const spent = ctl.client.totalRequests - before;
    assert.ok(spent <= 2, `the controller sent ${spent} requests in 4 s while the refusal stood (no spin)`);
  };

  before(async () => {
    env = await setupEnv();
    await createNodes(env.client, ["n1", "n2"]);
    agent = await startAgent(env, { resyncMs: 0 });
    ctl = await startController(env);
  });

  after(async () => {
    await removePolicy(env).catch(() => undefined);
    await resetCluster(env.client).catch(() => undefined);
    await ctl?.stop();
    await agent?.stop();
    await env?.stop();
  });

  it("a refused RuntimeClass: Degraded=RuntimeClassRefused quoting the policy, the other classes published, no spinning; fixed policy + any change: Ready", async () => {
    for (const o of refusePolicy("runtimeclasses", "object.metadata.name != 'fast'", "test policy: RuntimeClass fast is not allowed here")) await env.client.apply(o);
    const rc = (name: string): AnyObject => ({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name }, handler: name });
    await eventually("policy active", async () => {
      const r = await env.client.raw("POST", "/apis/node.k8s.io/v1/runtimeclasses?dryRun=All", rc("fast"));
      return r.status === 422 || r.status === 403;
    });
    await env.client.create(configObject({ rollout: { maxUnavailable: "100%" }, variants: [{ name: "fast", backend: "gvisor" }] }));

    const c = await eventually("Degraded RuntimeClassRefused", async () => {
      const got = await getConfig(env.client);
      return got?.status?.counts?.ready === 2 && degraded(got, "RuntimeClassRefused", /RuntimeClass fast: .*test policy: RuntimeClass fast is not allowed here/) ? got : null;
    }, 60_000);
    assert.deepEqual(c.status?.runtimeClasses, ["gvisor", "sandboxed"], "the classes the apiserver took are published and listed; fast is not");
    assert.equal(await env.client.getOrNull("RuntimeClass", "fast"), null);

    // Settled: the refusal is retried every 30 s, not in a loop.
    await assertNoSpin();

    await removePolicy(env);
    await eventually("policy gone", async () => (await env.client.raw("POST", "/apis/node.k8s.io/v1/runtimeclasses?dryRun=All", rc("fast"))).status === 201);
    await env.client.mergePatch("SandboxConfig", "cluster", { metadata: { annotations: { "test/touch": "1" } } });
    const ready = await waitReady(env.client, 2, 30_000);
    assert.deepEqual(ready.status?.runtimeClasses, ["fast", "gvisor", "sandboxed"]);
    assert.equal(cond(ready, "Degraded")?.reason, "AsExpected");
  });

  it("a refused Node label patch: Degraded=NodeLabelRefused naming the Node and quoting the policy, never Ready; fixed: Ready", async () => {
    for (const o of refusePolicy("nodes", "object.metadata.name != 'n2' || !has(object.metadata.labels) || !('sandboxing.dev/runtime.wide' in object.metadata.labels)", "test policy: no wide runtime on n2")) await env.client.apply(o);
    await eventually("policy active", async () => {
      const r = await env.client.raw("PATCH", "/api/v1/nodes/n2?dryRun=All", { metadata: { labels: { "sandboxing.dev/runtime.wide": "true" } } }, "application/merge-patch+json");
      return r.status === 422 || r.status === 403;
    });
    await env.client.mergePatch("SandboxConfig", "cluster", { spec: { variants: [{ name: "fast", backend: "gvisor" }, { name: "wide", backend: "gvisor" }] } });
    const c = await eventually("Degraded NodeLabelRefused", async () => {
      const got = await getConfig(env.client);
      return degraded(got, "NodeLabelRefused", /labels of Node n2: .*test policy: no wide runtime on n2/) ? got : null;
    }, 60_000);
    assert.ok(!/Node n1/.test(cond(c, "Degraded")!.message), "only the refused node is named");
    const n1 = await env.client.get<KubeObject>("Node", "n1");
    assert.equal(n1.metadata.labels?.["sandboxing.dev/runtime.wide"], "true", "the other node got its label");

    await assertNoSpin();

    await removePolicy(env);
    await eventually("policy gone", async () => (await env.client.raw("PATCH", "/api/v1/nodes/n2?dryRun=All", { metadata: { labels: { "sandboxing.dev/runtime.wide": "true" } } }, "application/merge-patch+json")).status === 200);
    await env.client.mergePatch("SandboxConfig", "cluster", { metadata: { annotations: { "test/touch": "2" } } });
    const ready = await waitReady(env.client, 2, 30_000);
    assert.equal(cond(ready, "Degraded")?.reason, "AsExpected");
    const n2 = await env.client.get<KubeObject>("Node", "n2");
    assert.equal(n2.metadata.labels?.["sandboxing.dev/runtime.wide"], "true");
  });
});
