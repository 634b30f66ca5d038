// The cluster tier on Debian's containerd 1.6 (config.toml edited in place, Debian's unit): the
// node basics and the operator installed as a user installs it, on their own cluster.
import { basicsSuite } from "./basics.suite.js";
import { operatorSuite } from "./operator.suite.js";
import { rbacUseSuite } from "./rbac-use.suite.js";
import { clusterTier } from "./tier.js";

clusterTier("cluster tier on containerd 1.6", { containerd: "1.6" }, [basicsSuite, operatorSuite, rbacUseSuite]);
