// Starts one real single-node cluster (test/harness/kube-cluster.ts) for a list of suites, which are
// sibling *.suite.ts modules so node:test runs them in this process, then the teardown check.
import { after, before, describe } from "node:test";
import { startKubeCluster, type KubeCluster, type KubeClusterOptions } from "../harness/kube-cluster.js";
import { cleanupSuite } from "./cleanup.suite.js";
import type { ClusterHandle } from "./helpers.js";

export function clusterTier(name: string, opts: KubeClusterOptions, suites: Array<(c: ClusterHandle) => void>): void {
  let cluster: KubeCluster | undefined;
  let stopped = false;
  const handle = () => {
    if (!cluster) throw new Error("the cluster did not start (see before())");
    return cluster;
  };
  describe(name, { timeout: 900_000 }, () => {
    before(async () => {
      if (process.getuid?.() !== 0) throw new Error("the cluster tier needs root (namespaces, cgroups, mounts)");
      cluster = await startKubeCluster(opts);
      process.stderr.write(`[cluster] ${cluster.runtime === "crio" ? "CRI-O" : `containerd ${cluster.containerd}`}: time to cluster ready: ${(cluster.readyMs / 1000).toFixed(1)} s\n`);
    });
    after(async () => {
      // The teardown suite stops the cluster and asserts; this covers a run that failed before it.
      if (cluster && !stopped) await cluster.stop();
    });
    for (const s of suites) s(handle);
    cleanupSuite(handle, () => (stopped = true));
  });
}
