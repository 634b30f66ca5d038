// Cluster tier, last: stop() leaves the host as it found it (processes, mounts, sysctls, links,
// iptables/nftables rules, /var/run/netns, /var/log/containers, cgroups).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import type { KubeCluster } from "../harness/kube-cluster.js";

export function cleanupSuite(cluster: () => KubeCluster, stopped: (left: string[]) => void): void {
  describe("teardown", () => {
    it("stop() leaves nothing behind on the host", async () => {
      const c = cluster();
      const nodePid = c.node.pid;
      const nodeDir = c.node.dir;
      const pids = c.cp.pids;
      const left = await c.stop();
      stopped(left);
      assert.deepEqual(left, [], `left on the host after stop():\n${left.join("\n")}`);
      assert.equal(existsSync(`/proc/${nodePid}`), false, "the node's PID 1 is gone");
      for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `control plane pid ${pid} is gone`);
      assert.equal(existsSync(nodeDir), false, "the node's run directory is removed");
      assert.equal(readFileSync("/proc/self/mountinfo", "utf8").includes(nodeDir), false, "no mount names the node");
      for (const p of ["/var/run/netns", "/var/log/containers"]) assert.equal(existsSync(p), c.hostBefore.paths[p], `${p} as before`);
      assert.deepEqual(
        c.hostBefore.firewall.filter((l) => /KUBE-|CNI-/.test(l)),
        [],
        "no kube-proxy or CNI chains were there before either (the comparison above would hide nothing)",
      );
    });
  });
}
