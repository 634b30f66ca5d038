// Cluster tier, pod network: two pods talk over the CNI bridge, through a ClusterIP Service
// (kube-proxy's iptables rules), and a pod reaches the apiserver through the kubernetes Service.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { apply, deletePods, getJson, pod, waitPhase, type ClusterHandle } from "./helpers.js";

export function networkSuite(cluster: ClusterHandle): void {
  describe("pod network and Services", () => {
    let serverIP = "";

    it("two pods reach each other over the pod network (busybox nc)", async () => {
      const c = cluster();
      // One connection per loop turn; -e would need a persistent -ll server.
      await apply(c, pod("nc-server", c, { command: ["sh", "-c", "while :; do echo hello-from-$(hostname) | nc -l -p 8080; done"], restartPolicy: "Always" }));
      await apply(c, pod("nc-client", c, { command: ["sleep", "3600"] }));
      await waitPhase(c, "nc-server", "Running");
      await waitPhase(c, "nc-client", "Running");
      serverIP = (await getJson<{ status: { podIP: string } }>(c, "pod/nc-server")).status.podIP;
      assert.match(serverIP, /^10\.244\.0\.\d+$/, "the pod got an address from the bridge's host-local range");
      const out = await c.kubectl(["exec", "nc-client", "--", "sh", "-c", `nc -w 5 ${serverIP} 8080 </dev/null`]);
      assert.equal(out.trim(), "hello-from-nc-server");
    });

    it("a ClusterIP Service routes to the server pod (kube-proxy, iptables mode)", async () => {
      const c = cluster();
      await apply(c, { apiVersion: "v1", kind: "Service", metadata: { name: "nc", namespace: "default" }, spec: { selector: { app: "nc-server" }, ports: [{ port: 80, targetPort: 8080 }] } });
      const svc = await getJson<{ spec: { clusterIP: string } }>(c, "service/nc");
      assert.match(svc.spec.clusterIP, /^10\.96\./);
      // kube-proxy syncs after the EndpointSlice appears; retry the connection until it does.
      const deadline = Date.now() + 30_000;
      let last = "";
      while (Date.now() < deadline) {
        last = await c.kubectl(["exec", "nc-client", "--", "sh", "-c", `nc -w 2 ${svc.spec.clusterIP} 80 </dev/null`]).catch((e: Error) => e.message);
        if (last.trim() === "hello-from-nc-server") break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(last.trim(), "hello-from-nc-server");
    });

    it("a pod reaches kube-apiserver through the kubernetes Service (10.96.0.1) with its service account", async () => {
      const c = cluster();
      const env = await c.kubectl(["exec", "nc-client", "--", "sh", "-c", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"]);
      assert.equal(env.trim(), `10.96.0.1:443`);
      // busybox has no TLS client; a plain HTTP request to the apiserver's TLS port gets Go's own answer.
      const out = await c.kubectl(["exec", "nc-client", "--", "sh", "-c", "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT"]);
      assert.match(out, /Client sent an HTTP request to an HTTPS server/);
      const ca = await c.kubectl(["exec", "nc-client", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"]);
      assert.equal(ca.trim(), c.cp.ca.certPem.trim(), "kube-root-ca.crt is the cluster CA");
      const token = await c.kubectl(["exec", "nc-client", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"]);
      assert.match(token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    });

    it("cleans up its pods and Service", async () => {
      const c = cluster();
      await c.kubectl(["delete", "service", "nc", "--ignore-not-found"]);
      await deletePods(c, "nc-server", "nc-client");
    });
  });
}
