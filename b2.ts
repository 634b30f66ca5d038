import { ensureBinary } from "./test/harness/binaries.js";
for (const n of ["etcd", "kube-controller-manager"]) console.log(await ensureBinary(n));
