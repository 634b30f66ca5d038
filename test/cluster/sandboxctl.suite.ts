// Cluster tier, the second way to install, as from a mirror: `sandboxctl install --image
// <registry>/mirror/...@sha256:... --gvisor-payload <registry>/mirror/...@sha256:...` onto the same
// node after the kubectl uninstall; the agent pulls the payload from the mirror and installs gVisor
// from it; `sandboxctl uninstall` restores the node.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { before, describe, it } from "node:test";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { NAMESPACE } from "../../src/manifests/names.js";
import type { KubeCluster } from "../harness/kube-cluster.js";
import { pushOperatorImage, type PushedImage } from "../harness/operator-image.js";
import { apply, deletePods, getJson, logsMatching, pod, waitPhase, type ClusterHandle } from "./helpers.js";

const run = promisify(execFile);
const ROOT = repoRoot();
const CONFIG = "/etc/containerd/config.toml";
/** The payload's version directory on the node (docs/payloads.md): /opt/sandbox-operator/gvisor/<digest hex>/. */
const installed = (digest: string) => ["runsc", "containerd-shim-runsc-v1"].map((f) => `/opt/sandbox-operator/gvisor/${digest.replace(/^sha256:/, "")}/${f}`);

/** sandboxctl from this checkout, as `npx sandboxctl` runs it (docs/cli.md). */
async function sandboxctl(c: KubeCluster, args: string[], timeoutMs = 300_000): Promise<string> {
  const r = await run(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "--kubeconfig", c.kubeconfigPath, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 }).catch((e: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`sandboxctl ${args.join(" ")}: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`, { cause: e });
  });
  return r.stdout + r.stderr;
}

export function sandboxctlSuite(cluster: ClusterHandle): void {
  describe("sandboxctl install --image and --gvisor-payload from a mirror, sandboxctl uninstall", { concurrency: false }, () => {
    let image: PushedImage;
    let payload: { ref: string; digest: string };
    let configBefore: Buffer;

    before(async () => {
      const c = cluster();
      // Both images under the mirror's own names: the shipped `localhost/...` names do not resolve to them.
      image = await pushOperatorImage(c.registry, { repository: "mirror/sandbox-operator", payloadRepository: "mirror/sandbox-operator-gvisor" });
      assert.ok(image.gvisorPayload, "deploy/image.json pins a gVisor payload");
      payload = image.gvisorPayload;
      configBefore = readFileSync(c.node.hostPath(CONFIG));
      for (const f of installed(payload.digest)) assert.equal(existsSync(c.node.hostPath(f)), false, `${f} not on the node before`);
    });

    it("sandboxctl install --image REGISTRY/...@sha256:... --gvisor-payload REGISTRY/...@sha256:... waits for the controller; the agent installs gVisor from the mirrored payload; a sandboxed pod runs", async () => {
      const c = cluster();
      const out = await sandboxctl(c, ["install", "--image", image.ref, "--gvisor-payload", payload.ref, "--timeout", "240s"]);
      assert.match(out, /sandbox-operator is installed/, out);
      const ctrl = await getJson<{ spec: { template: { spec: { containers: Array<{ image: string }> } } } }>(c, "deployment", "sandbox-operator-controller", "-n", NAMESPACE);
      assert.equal(ctrl.spec.template.spec.containers[0]!.image, image.ref, "the Deployment runs the given image by digest");
      await c.kubectl(["apply", "-f", join(ROOT, "examples", "sandboxconfig.yaml")]);
      const deadline = Date.now() + 300_000;
      for (;;) {
        const st = await sandboxctl(c, ["status"], 60_000).catch((e: Error) => e.message);
        if (/Ready=True \(AllNodesReady\)/.test(st)) break;
        if (Date.now() > deadline) throw new Error(`not Ready within 300 s:\n${st}`);
        await new Promise((r) => setTimeout(r, 2000));
      }
      for (const f of installed(payload.digest)) assert.ok(existsSync(c.node.hostPath(f)), `the agent installed ${f}`);
      await apply(c, pod("sbx2", c, { runtimeClassName: "sandboxed", command: ["sh", "-c", "dmesg | head -n 1; sleep 3600"] }));
      await waitPhase(c, "sbx2", "Running", 120);
      await logsMatching(c, "sbx2", /Starting gVisor/);
    });

    it("sandboxctl uninstall: the node's config byte-identical, the installed binaries removed, nothing of ours left", async () => {
      const c = cluster();
      await deletePods(c, "sbx2");
      const out = await sandboxctl(c, ["uninstall", "--timeout", "240s"]);
      assert.match(out, /sandbox-operator is uninstalled/, out);
      assert.ok(readFileSync(c.node.hostPath(CONFIG)).equals(configBefore), "config.toml byte-identical");
      for (const f of installed(payload.digest)) assert.equal(existsSync(c.node.hostPath(f)), false, `${f} removed`);
      const left = existsSync(c.node.hostPath("/opt/sandbox-operator")) ? readdirSync(c.node.hostPath("/opt/sandbox-operator"), { recursive: true }) : [];
      assert.equal(existsSync(c.node.hostPath("/opt/sandbox-operator")), false, `nothing of ours left under /opt (no empty directories either); left: /opt/sandbox-operator/{${left.join(",")}}`);
      await c.kubectl(["wait", "--for=delete", `namespace/${NAMESPACE}`, "--timeout=120s"], { timeoutMs: 130_000 }).catch(() => undefined);
      assert.equal((await c.kubectl(["get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"])).trim(), "", "namespace gone");
      const labels = (await getJson<{ metadata: { labels: Record<string, string> } }>(c, "node", c.nodeName)).metadata.labels;
      assert.deepEqual(Object.keys(labels).filter((k) => k.startsWith("sandboxing.dev/")), []);
    });
  });
}
