// The cluster tier's main entry: one real single-node cluster on containerd 2.4.2 for every suite.
// SANDBOX_CLUSTER_CONTAINERD=1.6 runs the same suites on Debian's containerd 1.6 (docs/development.md).
import { basicsSuite } from "./basics.suite.js";
import { gvisorSuite } from "./gvisor.suite.js";
import { networkSuite } from "./network.suite.js";
import { operatorSuite } from "./operator.suite.js";
import { restartSuite } from "./restart.suite.js";
import { sandboxctlSuite } from "./sandboxctl.suite.js";
import { rbacUseSuite } from "./rbac-use.suite.js";
import { clusterTier } from "./tier.js";

const containerd = process.env.SANDBOX_CLUSTER_CONTAINERD ?? "2";
if (containerd !== "2" && containerd !== "1.6") throw new Error(`SANDBOX_CLUSTER_CONTAINERD=${containerd}: use 2 or 1.6`);
// The payload's gVisor shim speaks containerd 2's start protocol: sandboxctl's payload install runs on 2.x.
clusterTier("cluster tier: a real single-node cluster", { containerd }, [basicsSuite, networkSuite, gvisorSuite, restartSuite, operatorSuite, ...(containerd === "2" ? [sandboxctlSuite] : []), rbacUseSuite]);
