// The cluster tier on CRI-O 1.34 (the harness build, Debian's conmon and runc, the kubelet on
// CRI-O's socket): the node basics, the pod network, and the operator installed with kubectl
// (CRI-O's drop-in, gVisor verified with Pods, a sandboxed pod, uninstall).
import { basicsSuite } from "./basics.suite.js";
import { networkSuite } from "./network.suite.js";
import { operatorCrioSuite } from "./operator-crio.suite.js";
import { clusterTier } from "./tier.js";

clusterTier("cluster tier on CRI-O", { runtime: "crio" }, [basicsSuite, networkSuite, operatorCrioSuite]);
