// Seeded input fuzz (issue 15 item 10) on a real apiserver with our CRD and webhook: every case is
// refused naming the field, or accepted and then every object derived from it is accepted too
// (RuntimeClasses, node labels, the SandboxNode, the node's rendered files); a sample is reconciled
// by the real controller, whose status must be true to what exists, without spinning.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { AGENT_NODE_LABEL, API_VERSION, BACKENDS, SANDBOXNODE_KIND, type SandboxConfig } from "../../src/api/index.js";
import { CONFIG_LABEL, PURPOSE_LABEL, desiredRuntimeClasses, isOurs, runtimeLabel, verifyRuntimeClasses } from "../../src/controller/desired-runtimeclasses.js";
import { matchesSelector, planRollout } from "../../src/controller/policy-rollout.js";
import { desiredNode } from "../../src/render/desired-node.js";
import { renderKataConfigs } from "../../src/render/node/kata-config.js";
import { defaultLayout } from "../../src/render/node/layout.js";
import { probeFor, type SimulatedAgent } from "../harness/simulated-agent.js";
import { startTestWebhook } from "./admission-fixture.js";
import { cond, createNodes, eventually, getConfig, setupEnv, startAgent, startController, type Config, type Env } from "./controller-helpers.js";
import { fieldsIn, fuzzCases, related, type FuzzCase } from "./config-fuzz-gen.js";

const SEED = 0x15_10;
const CASES = 1000;
const SAMPLE = 12;
const CONFIGS = "/apis/sandboxing.dev/v1alpha1/sandboxconfigs";
const NODES = [{ name: "fz-1", labels: { "fuzz.sandboxing.dev/pool": "a", "fuzz.sandboxing.dev/zone": "z1" } }, { name: "fz-2", labels: { "fuzz.sandboxing.dev/pool": "a", "fuzz.sandboxing.dev/zone": "z2" } }];

const config = (spec: unknown) => ({ apiVersion: API_VERSION, kind: "SandboxConfig", metadata: { name: "cluster" }, spec });
const describeCase = (c: FuzzCase) => `case ${c.index}: ${c.mutations.map((m) => `${m.field}=${JSON.stringify(m.value)}`).join(", ")}`;

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** Everything the controller and agent would derive from an accepted config, each put to the apiserver by dry run; the problems found. */
async function derivedProblems(client: KubeClient, stored: SandboxConfig, node: KubeObject): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  };
  const classes = desiredRuntimeClasses(stored.spec);
  for (const rc of [...classes, ...verifyRuntimeClasses(classes)]) await attempt(`RuntimeClass ${rc.metadata.name}`, () => client.apply(rc as unknown as KubeObject, { dryRun: true }));
  const labels = Object.fromEntries([[AGENT_NODE_LABEL, "true"], ...classes.map((rc) => [runtimeLabel(rc.metadata.name), "true"])]);
  await attempt("Node labels", async () => {
    const r = await client.raw("PATCH", `/api/v1/nodes/${node.metadata.name}?dryRun=All`, { metadata: { labels } }, "application/merge-patch+json");
    if (r.status !== 200) throw new Error(r.body);
  });
  const plan = planRollout({ config: { ...stored, metadata: { ...stored.metadata, generation: 1, uid: "fuzz" } }, nodes: [{ name: node.metadata.name, uid: node.metadata.uid, labels: node.metadata.labels ?? {} }], sandboxNodes: [] });
  const spec = plan.nodes[0]?.spec;
  if (spec) {
    const sn = { apiVersion: API_VERSION, kind: SANDBOXNODE_KIND, metadata: { name: node.metadata.name, labels: { [CONFIG_LABEL]: "cluster" }, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node.metadata.name, uid: node.metadata.uid!, blockOwnerDeletion: false }] }, spec };
    await attempt("SandboxNode", () => client.apply(sn as unknown as KubeObject, { dryRun: true }));
  }
  await attempt("node files", async () => {
    const desired = desiredNode(stored.spec, probeFor([...BACKENDS]));
    renderKataConfigs(desired.handlers, { layout: defaultLayout(), allowedAnnotations: desired.allowedAnnotations });
  });
  return problems;
}

describe("SandboxConfig input fuzz: real apiserver, CRD, webhook, controller (issue 15 item 10)", { timeout: 600_000 }, () => {
  let env: Env;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook | undefined;
  const accepted: FuzzCase[] = [];

  before(async () => {
    env = await setupEnv();
    webhookClient = await KubeClient.fromKubeConfig(env.cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    webhook = await startTestWebhook(webhookClient);
    // A class someone else owns: names colliding with it are the webhook's to refuse.
    await env.client.apply({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: "legacy" }, handler: "legacy" } as AnyObject);
    for (const n of NODES) await createNodes(env.client, [n.name], n.labels);
    await eventually("webhook active", async () => {
      const r = await env.client.raw("POST", `${CONFIGS}?dryRun=All`, config({ runtimes: { allowed: ["gvisor"] }, runtimeClassName: "legacy" }));
      return r.status === 422 && r.body.includes("sandboxconfigs.validate.sandboxing.dev");
    }, 30_000, 200);
  });

  after(async () => {
    await webhook?.stop();
    webhookClient?.close();
    await env?.stop();
  });

  it("the derived-object check catches what the apiserver refuses (a spec our CRD would not let through)", async () => {
    const node = await env.client.get<KubeObject>("Node", NODES[0]!.name);
    const bad = { ...config({ runtimes: { allowed: ["gvisor"] }, runtimeClassName: "r".repeat(60), tolerations: [{ key: "gpu", operator: "Exists", value: "x" }], overhead: { gvisor: { memory: "-64Mi" } } }), metadata: { name: "cluster" } } as unknown as SandboxConfig;
    const problems = await derivedProblems(env.client, bad, node);
    assert.ok(problems.some((p) => /RuntimeClass r{60}: .*tolerations\[0\]\.operator: Invalid value: "x": value must be empty when `operator` is 'Exists'/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /RuntimeClass r{60}: .*overhead\.limits\[memory\]: Invalid value: "-64Mi": must be greater than or equal to 0/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /^Node labels: .*sandboxing\.dev\/runtime\.r{60}/.test(p)), problems.join("\n"));
  });

  it(`${CASES} seeded cases: refused naming the mutated field, or accepted with every derived object accepted`, async (t) => {
    const cases = fuzzCases(SEED, CASES);
    const node = await env.client.get<KubeObject>("Node", NODES[0]!.name);
    const failures: string[] = [];
    let refused = 0;
    const started = Date.now();
    await forEachLimit(cases, 4, async (c) => {
      const r = await env.client.raw("POST", `${CONFIGS}?dryRun=All`, config(c.spec));
      const body = JSON.parse(r.body) as SandboxConfig & { message?: string };
      if (r.status === 201) {
        accepted.push(c);
        const problems = await derivedProblems(env.client, body, node);
        if (problems.length) failures.push(`${describeCase(c)}: accepted, but ${problems.slice(0, 2).join("; ")}`);
        return;
      }
      refused++;
      const message = body.message ?? r.body;
      const fields = fieldsIn(message);
      if (r.status !== 422 && r.status !== 400) failures.push(`${describeCase(c)}: HTTP ${r.status} ${message}`);
      else if (!fields.some((f) => c.mutations.some((m) => related(f, m.field)))) failures.push(`${describeCase(c)}: refused without naming a mutated field: ${message}`);
    });
    t.diagnostic(`${cases.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s: ${refused} refused, ${accepted.length} accepted`);
    assert.deepEqual(failures.slice(0, 15), [], `${failures.length} of ${cases.length} cases failed`);
    assert.ok(refused > CASES / 4 && accepted.length > CASES / 10, `the mutations reach both outcomes (${refused} refused, ${accepted.length} accepted)`);
  });

  it(`${SAMPLE} accepted cases reconciled by the real controller: status true to the RuntimeClasses and labels present, no spin`, async (t) => {
    assert.ok(accepted.length >= SAMPLE, "the fuzz cases ran first");
    accepted.sort((a, b) => a.index - b.index);
    const sample = Array.from({ length: SAMPLE }, (_, i) => accepted[Math.floor((i * accepted.length) / SAMPLE)]!);
    const agent: SimulatedAgent = await startAgent(env, { resyncMs: 0 });
    const ctl = await startController(env);
    try {
      for (const c of sample) {
        const before = ctl.client.totalRequests;
        // An update (PUT) as kubectl replace sends it: the spec is what was dry-run created above.
        const current = await getConfig(env.client);
        const r = current
          ? await env.client.raw("PUT", `${CONFIGS}/cluster`, { ...config(c.spec), metadata: current.metadata })
          : await env.client.raw("POST", CONFIGS, config(c.spec));
        assert.ok(r.status === 200 || r.status === 201, `${describeCase(c)}: accepted by dry run, so accepted for real: ${r.body}`);
        const stored = (await getConfig(env.client))!;
        // Settled: status for this generation, then no controller request for 1.5 s (a spinning controller never settles).
        let last = -1;
        let quietSince = Date.now();
        const cpu0 = process.cpuUsage();
        const settled = await eventually(`case ${c.index} settled`, async () => {
          const now = ctl.client.totalRequests;
          if (now !== last) [last, quietSince] = [now, Date.now()];
          const got = await getConfig(env.client);
          return got?.status?.observedGeneration === got?.metadata.generation && cond(got, "Ready") && Date.now() - quietSince > 1500 ? got : null;
        }, 30_000, 100);
        const cpu = process.cpuUsage(cpu0);
        const spent = ctl.client.totalRequests - before;
        assert.ok(spent <= 120, `${describeCase(c)}: the controller sent ${spent} requests for one config change (bounded)`);
        assert.ok((cpu.user + cpu.system) / 1000 < 10_000, `${describeCase(c)}: the test process used ${(cpu.user + cpu.system) / 1000} ms CPU while settling`);
        await assertTruthful(env.client, stored, settled, describeCase(c));
        t.diagnostic(`${describeCase(c)} -> Ready=${cond(settled, "Ready")?.status} ${cond(settled, "Ready")?.reason}, Degraded=${cond(settled, "Degraded")?.reason}, ${spent} requests`);
      }
    } finally {
      await ctl.stop();
      await agent.stop();
    }
  });
});

/** Status says only what is so: listed classes exist and are ours; Ready=True means every class and label is there. */
async function assertTruthful(client: KubeClient, stored: Config, status: Config, what: string): Promise<void> {
  const rcs = (await client.list<KubeObject & { handler: string }>("RuntimeClass")).items;
  const ours = rcs.filter((rc) => isOurs(rc) && rc.metadata.labels?.[CONFIG_LABEL] === "cluster" && rc.metadata.labels?.[PURPOSE_LABEL] !== "verify").map((rc) => rc.metadata.name).sort();
  const ready = cond(status, "Ready")!;
  const degraded = cond(status, "Degraded");
  assert.ok(ready.message && ready.reason, `${what}: Ready has a reason and a message`);
  if (degraded?.status === "True") assert.ok(degraded.message, `${what}: Degraded=True says why`);
  for (const name of status.status?.runtimeClasses ?? []) assert.ok(ours.includes(name), `${what}: status lists RuntimeClass ${name}, which does not exist as ours`);
  if (ready.status !== "True") return;
  const want = desiredRuntimeClasses(stored.spec).map((rc) => rc.metadata.name).sort();
  assert.deepEqual(ours, want, `${what}: Ready=True, so every RuntimeClass is published`);
  const nodes = (await client.list<KubeObject>("Node")).items.filter((n) => matchesSelector(stored.spec.nodeSelector ?? {}, n.metadata.labels ?? {}));
  assert.equal(status.status?.counts?.selected, nodes.length, `${what}: Ready=True counts the selected nodes`);
  const general = stored.spec.runtimeClassName ?? "sandboxed";
  for (const n of nodes) {
    assert.equal(n.metadata.labels?.[runtimeLabel(general)], "true", `${what}: Ready=True, so node ${n.metadata.name} carries ${runtimeLabel(general)}`);
    assert.equal(n.metadata.labels?.[AGENT_NODE_LABEL], "true", `${what}: Ready=True, so node ${n.metadata.name} carries the agent label`);
  }
}
