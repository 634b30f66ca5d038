// Cluster tier, gVisor: a runsc handler written by hand into the node's containerd config (the
// harness's own proof; the operator writes its own handlers) and a pod that runs under it.
import assert from "node:assert/strict";
import { release } from "node:os";
import { describe, it } from "node:test";
import { apply, deletePods, logsMatching, pod, waitPhase, type ClusterHandle } from "./helpers.js";

export function gvisorSuite(cluster: ClusterHandle): void {
  describe("gVisor by hand", () => {
    it("a pod with RuntimeClass gvisor-by-hand runs under gVisor's kernel, with pod networking", async () => {
      const c = cluster();
      await apply(c, { apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: "gvisor-by-hand" }, handler: "runsc" });
      await apply(c, pod("gvisor-by-hand", c, { runtimeClassName: "gvisor-by-hand", command: ["sh", "-c", "uname -r; dmesg | head -n 3; hostname; sleep 3600"] }));
      await waitPhase(c, "gvisor-by-hand", "Running", 120);
      const out = await logsMatching(c, "gvisor-by-hand", /gvisor-by-hand/);
      const [kernel] = out.split("\n");
      assert.match(kernel!, /^\d+\.\d+\.\d+-gvisor$/, `gVisor's own kernel version (uname -r), not the host's ${release()}`);
      assert.match(out, /Starting gVisor/, "gVisor's kernel log (dmesg)");
      const p = JSON.parse(await c.kubectl(["get", "pod/gvisor-by-hand", "-o", "json"])) as { status: { podIP: string } };
      assert.match(p.status.podIP, /^10\.244\.0\.\d+$/, "gVisor's netstack got the pod's address (network=sandbox inside the pod netns)");
      await deletePods(c, "gvisor-by-hand");
      await c.kubectl(["delete", "runtimeclass", "gvisor-by-hand"]);
    });
  });
}
