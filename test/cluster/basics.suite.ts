// Cluster tier, basics: the node is Ready, the scheduler places a runc pod, its image came from the
// local registry by digest, kubectl logs works, and the node's mounts propagate into pods.
import assert from "node:assert/strict";
import { release } from "node:os";
import { describe, it } from "node:test";
import { CriClient } from "../../src/agent/cri/client.js";
import { apply, deletePods, getJson, logsMatching, pod, waitPhase, type ClusterHandle } from "./helpers.js";

interface NodeList {
  items: Array<{ metadata: { name: string }; spec: { podCIDR?: string }; status: { conditions: Array<{ type: string; status: string }>; addresses: Array<{ type: string; address: string }>; nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string; kubeProxyVersion?: string } } }>;
}

export function basicsSuite(cluster: ClusterHandle): void {
  describe("basics", () => {
    it("the node is Ready, reports its eth0 address, its runtime (containerd 2.4 or 1.6, or CRI-O 1.34) and kubelet v1.34 (real kubectl)", async () => {
      const c = cluster();
      const nodes = await getJson<NodeList>(c, "nodes");
      assert.deepEqual(nodes.items.map((n) => n.metadata.name), [c.nodeName]);
      const n = nodes.items[0]!;
      assert.equal(n.status.conditions.find((x) => x.type === "Ready")?.status, "True");
      assert.equal(n.status.addresses.find((a) => a.type === "InternalIP")?.address, c.nodeIP);
      assert.match(n.status.nodeInfo.containerRuntimeVersion, c.runtime === "crio" ? /^cri-o:\/\/1\.34\./ : c.containerd === "2" ? /^containerd:\/\/v?2\.4\./ : /^containerd:\/\/1\.6\./);
      assert.equal(n.status.nodeInfo.kubeletVersion, "v1.34.4");
      assert.equal(n.spec.podCIDR, "10.244.0.0/24", "the controller-manager allocated the node's pod CIDR");
      const version = await c.kubectl(["version", "-o", "json"]);
      assert.equal((JSON.parse(version) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion, "v1.34.4", "the harness's kubectl, not the machine's");
    });

    it("a runc pod is scheduled by kube-scheduler, runs, and kubectl logs shows the host kernel", async () => {
      const c = cluster();
      await apply(c, pod("runc-uname", c, { command: ["sh", "-c", "uname -r; sleep 3600"] }));
      await waitPhase(c, "runc-uname", "Running");
      const out = await logsMatching(c, "runc-uname", /\S/);
      assert.equal(out.trim(), release(), "a runc container shares the host kernel");
      const p = await getJson<{ spec: { nodeName: string } }>(c, "pod/runc-uname");
      assert.equal(p.spec.nodeName, c.nodeName);
      const events = await c.kubectl(["get", "events", "--field-selector", "involvedObject.name=runc-uname,reason=Scheduled", "-o", "jsonpath={.items[*].source.component}{.items[*].reportingComponent}"]);
      assert.match(events, /default-scheduler/);
    });

    it("the pod's image was pulled by digest from the local registry", async () => {
      const c = cluster();
      const p = await getJson<{ status: { containerStatuses: Array<{ image: string; imageID: string }> } }>(c, "pod/runc-uname");
      const digest = c.images.busybox.split("@")[1]!;
      assert.match(c.images.busybox, /^127\.0\.0\.1:\d+\/busybox@sha256:[0-9a-f]{64}$/);
      assert.equal(p.status.containerStatuses[0]!.imageID, c.images.busybox);
      if (c.runtime === "crio") {
        // CRI-O's image store, through its CRI socket (no ctr here).
        const cri = new CriClient(c.node.hostPath(c.criSocket));
        try {
          assert.notEqual(await cri.imageStatus(c.images.busybox), null, `CRI-O holds ${c.images.busybox}`);
          assert.notEqual(await cri.imageStatus(c.images.pause), null, `the pause image came from the registry too: ${c.images.pause}`);
        } finally {
          cri.close();
        }
      } else {
        const { stdout } = await c.node.exec(["ctr", "-n", "k8s.io", "images", "ls", "-q"]);
        assert.ok(stdout.split("\n").includes(c.images.busybox), `containerd holds ${c.images.busybox}:\n${stdout}`);
        assert.ok(stdout.split("\n").includes(c.images.pause), `the sandbox (pause) image came from the registry too:\n${stdout}`);
      }
      assert.ok(digest.startsWith("sha256:"));
    });

    it("a mount made in the node after a pod started reaches it (mountPropagation: HostToContainer)", async () => {
      const c = cluster();
      await c.node.exec(["mkdir", "-p", "/mnt/propagation"]);
      await apply(
        c,
        pod("propagation", c, {
          command: ["sh", "-c", "while :; do cat /host/sub/marker 2>/dev/null && break; sleep 0.2; done; sleep 3600"],
          volumes: [{ name: "host", hostPath: { path: "/mnt/propagation", type: "Directory" } }],
          volumeMounts: [{ name: "host", mountPath: "/host", mountPropagation: "HostToContainer" }],
        }),
      );
      await waitPhase(c, "propagation", "Running");
      await c.node.exec(["sh", "-c", "mkdir -p /mnt/propagation/sub && mount -t tmpfs tmpfs /mnt/propagation/sub && echo propagated > /mnt/propagation/sub/marker"]);
      assert.match(await logsMatching(c, "propagation", /propagated/), /propagated/);
      await deletePods(c, "propagation");
      await c.node.exec(["umount", "/mnt/propagation/sub"]);
    });
  });
}
