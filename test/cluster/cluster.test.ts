// The cluster tier's one entry: starts one real single-node cluster (test/harness/kube-cluster.ts)
// for all its suites, which are sibling *.suite.ts modules so node:test runs them in this process.
import { after, before, describe } from "node:test";
import { startKubeCluster, type KubeCluster } from "../harness/kube-cluster.js";
import { basicsSuite } from "./basics.suite.js";
import { cleanupSuite } from "./cleanup.suite.js";
import { gvisorSuite } from "./gvisor.suite.js";
import { networkSuite } from "./network.suite.js";
import { operatorSuite } from "./operator.suite.js";
import { restartSuite } from "./restart.suite.js";

let cluster: KubeCluster | undefined;
let stopped = false;
const handle = () => {
  if (!cluster) throw new Error("the cluster did not start (see before())");
  return cluster;
};

describe("cluster tier: a real single-node cluster", { timeout: 900_000 }, () => {
  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("the cluster tier needs root (namespaces, cgroups, mounts)");
    // SANDBOX_CLUSTER_CONTAINERD=1.6 runs the same suites on Debian's containerd 1.6 (docs/development.md).
    const containerd = process.env.SANDBOX_CLUSTER_CONTAINERD ?? "2";
    if (containerd !== "2" && containerd !== "1.6") throw new Error(`SANDBOX_CLUSTER_CONTAINERD=${containerd}: use 2 or 1.6`);
    cluster = await startKubeCluster({ containerd });
    process.stderr.write(`[cluster] time to cluster ready: ${(cluster.readyMs / 1000).toFixed(1)} s\n`);
  });
  after(async () => {
    // The teardown suite stops the cluster and asserts; this covers a run that failed before it.
    if (cluster && !stopped) await cluster.stop();
  });

  basicsSuite(handle);
  networkSuite(handle);
  gvisorSuite(handle);
  restartSuite(handle);
  operatorSuite(handle);
  cleanupSuite(handle, () => (stopped = true));
});
