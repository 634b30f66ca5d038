// The cluster tier on CRI-O 1.34 (the harness build, Debian's conmon and runc, the kubelet on
// CRI-O's socket): the node basics and the pod network. The operator's suites on CRI-O are not yet
// part of this tier (docs/development.md says what is and is not).
import { basicsSuite } from "./basics.suite.js";
import { networkSuite } from "./network.suite.js";
import { clusterTier } from "./tier.js";

clusterTier("cluster tier on CRI-O", { runtime: "crio" }, [basicsSuite, networkSuite]);
