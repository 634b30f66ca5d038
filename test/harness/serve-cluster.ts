// Starts the cluster tier's single-node cluster and keeps it up until Ctrl-C, for debugging:
// prints the admin kubeconfig, the kubectl to use, and how to enter the node (docs/development.md).
import { binaryPath } from "./binaries.js";
import { startKubeCluster } from "./kube-cluster.js";

// --containerd=1.6: Debian's containerd in the node instead of 2.4.2.
const containerd = process.argv.includes("--containerd=1.6") ? "1.6" : "2";
const cluster = await startKubeCluster({ containerd });
const kubectl = binaryPath("kubectl");
console.log(`cluster ready in ${(cluster.readyMs / 1000).toFixed(1)} s`);
console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
console.log(`alias kubectl=${kubectl}   # the harness's kubectl v1.34.4 (not /usr/bin/kubectl)`);
console.log(`images: ${cluster.images.busybox} (busybox), ${cluster.images.pause} (pause)`);
console.log(`node shell: nsenter --target ${cluster.node.pid} --mount --pid --uts --ipc -- bash`);
console.log(`node journal: nsenter --target ${cluster.node.pid} --mount --pid -- journalctl -u kubelet -u containerd -u kube-proxy`);
console.log("Ctrl-C stops the cluster and restores the host.");
let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  const left = await cluster.stop();
  if (left.length) console.error(`left on the host:\n${left.join("\n")}`);
  process.exit(left.length ? 1 : 0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
setInterval(() => {}, 1 << 30);
