// Cluster tier on CRI-O, the product as a user installs it: the image `npm run build:image` builds,
// pushed to the node's registry; `kubectl apply --server-side` of deploy/sandbox-operator.yaml;
// `kubectl apply -f examples/sandboxconfig.yaml`; the agent pod writes CRI-O's drop-in, restarts
// CRI-O through the node's systemd, verifies with Pods; a sandboxed pod runs under gVisor;
// uninstall restores CRI-O's config and removes every file of ours.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { writeArchive } from "../../src/images/build.js";
import { readImageLock, repoRoot } from "../../src/manifests/image-lock.js";
import { AGENT, CONTROLLER, NAMESPACE, WEBHOOK } from "../../src/manifests/names.js";
import { CRIO_DROPIN } from "../../src/render/node/layout.js";
import { eventually as eventuallyEvery } from "../harness/cluster.js";
import { buildCrioTestGvisorPayload } from "../harness/gvisor.js";
import { NODE_BIN } from "../harness/node-config.js";
import { CRIO_NODE_BASE_DROPIN } from "../harness/node-crio.js";
import { pushOperatorImage } from "../harness/operator-image.js";
import { apply, deletePods, getJson, logsMatching, operatorDiag, pod, waitPhase, type ClusterHandle } from "./helpers.js";

const ROOT = repoRoot();
const MANIFEST = join(ROOT, "deploy", "sandbox-operator.yaml");

interface Obj {
  metadata: { name: string; labels?: Record<string, string> };
  status?: Record<string, unknown> & { conditions?: Array<{ type: string; status: string; reason: string; message: string }>; phase?: string };
}
const cond = (o: Obj, type: string) => o.status?.conditions?.find((c) => c.type === type);
const eventually = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000) => eventuallyEvery(what, fn, timeoutMs, 500);

/**
 * This VM only: CRI-O gives a pod's infra container oomScoreAdj -998 and root here lacks
 * CAP_SYS_RESOURCE, so the shipped payload's runsc cannot start a gVisor sandbox here. This payload
 * is the shipped one with runsc behind the OOM-score clamp (test/harness/gvisor.ts), which runs the
 * node's own runsc (bind-mounted at NODE_BIN); the manifest names it instead of the shipped
 * payload, and that one argument is the only change to deploy/sandbox-operator.yaml.
 */
async function pushClampedPayload(c: ReturnType<ClusterHandle>): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), "sandbox-operator-crio-payload-"));
  try {
    const built = await buildCrioTestGvisorPayload("0.1.0-crio-vm", { runscAt: `${NODE_BIN}/runsc`, repository: "localhost/sandbox-operator-gvisor-crio-vm" });
    const archive = join(work, "payload.oci.tar");
    writeArchive(built, archive);
    return await c.registry.push(archive, "sandbox-operator-gvisor-crio-vm", { tag: built.tag });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function operatorCrioSuite(cluster: ClusterHandle): void {
  describe("sandbox-operator on a CRI-O node, installed with kubectl", { concurrency: false }, () => {
    let baseBefore: Buffer;
    let manifest: string;
    const config = async () => getJson<Obj>(cluster(), "sandboxconfig", "cluster");
    const ourLabels = async () => {
      const n = await getJson<Obj>(cluster(), "node", cluster().nodeName);
      return Object.fromEntries(Object.entries(n.metadata.labels ?? {}).filter(([k]) => k.startsWith("sandboxing.dev/")));
    };
    const diag = () => operatorDiag(cluster(), cluster().node.journal("crio", 30));
    const withDiag = async <T>(p: Promise<T>): Promise<T> =>
      p.catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diag()}`, { cause: e });
      });

    before(async () => {
      const c = cluster();
      await pushOperatorImage(c.registry);
      const shipped = readImageLock(ROOT).gvisorPayload!;
      const clamped = await pushClampedPayload(c);
      const text = readFileSync(MANIFEST, "utf8");
      const arg = `--gvisor-payload=${shipped.repository}@${shipped.digest}`;
      assert.ok(text.includes(arg), `the manifest names the shipped payload (${arg})`);
      manifest = text.replace(arg, `--gvisor-payload=${clamped}`);
      baseBefore = readFileSync(c.node.hostPath(CRIO_NODE_BASE_DROPIN));
    });

    it("kubectl apply --server-side: controller and webhook run as pods on the CRI-O node", async () => {
      const c = cluster();
      await c.kubectl(["apply", "--server-side", "-f", "-"], { input: manifest });
      for (const d of [CONTROLLER, WEBHOOK]) await withDiag(c.kubectl(["-n", NAMESPACE, "rollout", "status", `deployment/${d}`, "--timeout=240s"], { timeoutMs: 250_000 }));
    });

    it("kubectl apply -f examples/sandboxconfig.yaml: the agent writes CRI-O's drop-in, restarts CRI-O, verifies with Pods; the node is labelled", async () => {
      const c = cluster();
      await c.kubectl(["apply", "-f", join(ROOT, "examples", "sandboxconfig.yaml")]);
      await withDiag(eventually("SandboxConfig Ready", async () => cond(await config(), "Ready")?.status === "True", 300_000));
      const ds = await getJson<Obj>(c, "daemonset", AGENT, "-n", NAMESPACE);
      assert.equal(ds.status?.numberReady, 1);
      const sn = await getJson<Obj & { status: { handlers: Array<{ name: string; verified: boolean; kernel?: string }>; probe: { cri: { runtime: string } } } }>(c, "sandboxnode", c.nodeName);
      assert.equal(sn.status.phase, "Applied");
      for (const h of sn.status.handlers) {
        assert.ok(h.verified, `${h.name} verified`);
        assert.match(h.kernel ?? "", /gVisor/, `${h.name} ran under gVisor`);
      }
      assert.deepEqual(await ourLabels(), { "sandboxing.dev/agent": "true", "sandboxing.dev/runtime.gvisor": "true", "sandboxing.dev/runtime.sandboxed": "true" });
      const dropIn = readFileSync(c.node.hostPath(CRIO_DROPIN), "utf8");
      assert.match(dropIn, /^\[crio\.runtime\.runtimes\.sandboxed\]$/m, dropIn);
      assert.match(dropIn, /runtime_path = "\/opt\/sandbox-operator\/gvisor\/[0-9a-f]{64}\/containerd-shim-runsc-v1"/, "the shim of the installed payload version");
      assert.ok(readFileSync(c.node.hostPath(CRIO_NODE_BASE_DROPIN)).equals(baseBefore), "the package's own 10-crio.conf untouched");
      assert.equal((await c.kubectl(["-n", NAMESPACE, "get", "pods", "-l", "sandboxing.dev/verify=true", "-o", "name"])).trim(), "", "verification Pods are deleted after use");
    });

    it("a runtimeClassName: sandboxed pod shows the gVisor kernel, a runc pod the host's", async () => {
      const c = cluster();
      await apply(c, pod("crio-sandboxed", c, { runtimeClassName: "sandboxed", command: ["sh", "-c", "uname -r; dmesg | head -n 1; sleep 3600"] }));
      await apply(c, pod("crio-plain", c, { command: ["sh", "-c", "uname -r; sleep 3600"] }));
      await withDiag(waitPhase(c, "crio-sandboxed", "Running"));
      await waitPhase(c, "crio-plain", "Running");
      const sbx = await logsMatching(c, "crio-sandboxed", /gVisor/);
      assert.doesNotMatch(sbx.split("\n")[0]!, new RegExp(release().replace(/\./g, "\\.")), "not the host kernel");
      assert.equal((await logsMatching(c, "crio-plain", /\S/)).trim(), release());
    });

    it("uninstall (delete the pods, the SandboxConfig, then the manifest): CRI-O's drop-in gone, 10-crio.conf as before, nothing of ours under /opt", async () => {
      const c = cluster();
      await deletePods(c, "crio-sandboxed", "crio-plain");
      await c.kubectl(["delete", "sandboxconfig", "cluster", "--wait=false"]);
      await withDiag(eventually("SandboxConfig gone", async () => !(await c.kubectl(["get", "sandboxconfigs", "-o", "name"])).trim(), 300_000));
      assert.equal(existsSync(c.node.hostPath(CRIO_DROPIN)), false, "our drop-in is gone");
      assert.ok(readFileSync(c.node.hostPath(CRIO_NODE_BASE_DROPIN)).equals(baseBefore));
      assert.deepEqual(readdirSync(c.node.hostPath("/etc/crio/crio.conf.d")), ["10-crio.conf"]);
      assert.equal(existsSync(c.node.hostPath("/opt/sandbox-operator")), false, "every payload version and directory of ours is gone");
      assert.deepEqual(await ourLabels(), {});
      await c.kubectl(["delete", "-f", "-", "--wait=true", "--timeout=180s"], { input: manifest, timeoutMs: 200_000 });
    });
  });
}
