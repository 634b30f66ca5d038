// Starts one control plane and keeps it running until Ctrl-C, so test runs can reuse it
// through SANDBOX_TEST_KUBECONFIG (docs/development.md).
import { startControlPlane } from "./controlplane.js";

const cp = await startControlPlane({ controllerManager: process.argv.includes("--controller-manager") });
console.log(`control plane up at ${cp.url}`);
console.log(`export SANDBOX_TEST_KUBECONFIG=${cp.kubeconfigPath}`);
const shutdown = async () => {
  await cp.stop();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
setInterval(() => {}, 1 << 30);
