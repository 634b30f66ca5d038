// The webhook as its own process (src/admission/main.ts) behind the real apiserver: when it is
// down, enforce namespaces refuse pod creation (fail closed) and every other namespace carries on.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { KubeClient } from "../../src/kube/client.js";
import { freePort, testControlPlane } from "../harness/controlplane.js";
import { eventually } from "../harness/cluster.js";
import { NS, createPod, pod, setupCluster, waitWebhookActive } from "./admission-fixture.js";

function startProcess(kubeconfig: string, port: number, healthPort: number): { child: ChildProcess; output: () => string } {
  let output = "";
  const child = spawn(process.execPath, ["--import", "tsx", "src/admission/main.ts", `--kubeconfig=${kubeconfig}`, `--port=${port}`, `--health-port=${healthPort}`, "--bind-address=127.0.0.1", `--url=https://127.0.0.1:${port}`, "--tick=1000"], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  return { child, output: () => output };
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));

/** Waits for the webhook's "webhook serving" line (its log is asynchronous: it can trail the first answers). */
const serving = (p: { output(): string }) => eventually('the "webhook serving" log line', async () => /"msg":"webhook serving"/.test(p.output()), 10_000, 50).catch((e: Error) => {
  throw new Error(`${e.message}\n${p.output()}`, { cause: e });
});

describe("webhook process down", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let proc: ReturnType<typeof startProcess> | undefined;
  let port: number;
  let healthPort: number;

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await setupCluster(client);
    [port, healthPort] = [await freePort(), await freePort()];
  });
  after(async () => {
    if (proc && proc.child.exitCode === null) {
      proc.child.kill("SIGKILL");
      await exited(proc.child);
    }
    client?.close();
    await cp?.stop();
  });

  it("starts from its flags, reports ready on the health port and admits through the apiserver", async () => {
    proc = startProcess(cp.kubeconfigPath, port, healthPort);
    await eventually("readyz", async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200, 60_000, 250).catch((e) => {
      throw new Error(`${(e as Error).message}\n${proc!.output()}`);
    });
    assert.equal((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status, 200);
    await waitWebhookActive(client);
    await serving(proc);
  });

  it("crashed: enforce namespaces refuse pods with a message naming the webhook; audit and off namespaces are unaffected", async () => {
    proc!.child.kill("SIGKILL");
    await exited(proc!.child);
    const t0 = Date.now();
    const refused = await createPod(client, pod("down-enforce", NS.enforce));
    assert.equal(refused.status, 500, refused.message);
    assert.match(refused.message ?? "", /failed calling webhook "enforce\.pods\.sandboxing\.dev".*connection refused/);
    assert.equal(await client.getOrNull("Pod", "down-enforce", NS.enforce), null);
    for (const ns of [NS.audit, NS.off]) {
      const ok = await createPod(client, pod(`down-${ns}`, ns));
      assert.equal(ok.status, 201, `${ns}: ${ok.message}`);
      assert.equal(ok.obj?.spec.runtimeClassName ?? undefined, undefined, "nothing injected while the webhook is down");
    }
    assert.ok(Date.now() - t0 < 5000, "a dead webhook fails fast (connection refused), not after a timeout");
  });

  it("restarted: enforce namespaces work again; SIGTERM stops it cleanly", async () => {
    proc = startProcess(cp.kubeconfigPath, port, healthPort);
    await waitWebhookActive(client);
    const r = await createPod(client, pod("back-enforce", NS.enforce));
    assert.equal(r.status, 201, r.message);
    assert.equal(r.obj?.spec.runtimeClassName, "sandboxed");
    // The signal handlers are in place from the "webhook serving" line on (src/admission/main.ts):
    // the webhook answers a moment earlier, and its log is written asynchronously.
    await serving(proc);
    proc.child.kill("SIGTERM");
    assert.equal(await exited(proc.child), 0, proc.output());
  });
});
