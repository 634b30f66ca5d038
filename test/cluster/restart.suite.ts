// Cluster tier, runtime restart from outside the node, the way a hostPID agent pod does it:
// nsenter into the node's PID 1 mount and PID namespaces and `systemctl restart containerd`.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { CriClient, waitCriReady } from "../../src/agent/cri/client.js";
import { CONTAINERD_SOCKET } from "../harness/node-config.js";
import { apply, deletePods, getJson, pod, waitPhase, type ClusterHandle } from "./helpers.js";

const run = promisify(execFile);

interface PodStatus {
  status: { phase: string; containerStatuses: Array<{ containerID: string; restartCount: number; state: { running?: { startedAt: string } } }> };
}

export function restartSuite(cluster: ClusterHandle): void {
  describe("containerd restart through nsenter", () => {
    it("restarts the node's containerd (new MainPID, CRI answers) and a running pod keeps running", async () => {
      const c = cluster();
      await apply(c, pod("survivor", c, { command: ["sleep", "3600"] }));
      await waitPhase(c, "survivor", "Running");
      const before = await getJson<PodStatus>(c, "pod/survivor");
      const mainPid = async () => (await c.node.systemctl("show", "-p", "MainPID", "--value", "containerd.service")).stdout.trim();
      const pidBefore = await mainPid();

      const started = Date.now();
      await run("nsenter", ["--target", String(c.node.pid), "--mount", "--pid", "--", "systemctl", "restart", "containerd"]);
      await waitCriReady(c.node.hostPath(CONTAINERD_SOCKET), 30_000);
      const restartMs = Date.now() - started;
      process.stderr.write(`[cluster] containerd restart through nsenter: CRI ready again after ${restartMs} ms\n`);
      const pidAfter = await mainPid();
      assert.notEqual(pidAfter, pidBefore, "containerd was restarted (new main PID)");
      assert.equal((await c.node.systemctl("is-active", "containerd.service")).stdout.trim(), "active");

      // The container is still the same one, still running: the shim outlived containerd (KillMode=process).
      const cri = new CriClient(c.node.hostPath(CONTAINERD_SOCKET));
      try {
        const id = before.status.containerStatuses[0]!.containerID.replace(/^containerd:\/\//, "");
        const st = await cri.containerStatus(id);
        assert.equal(st.state, "CONTAINER_RUNNING");
      } finally {
        cri.close();
      }
      await new Promise((r) => setTimeout(r, 3_000));
      const after = await getJson<PodStatus>(c, "pod/survivor");
      assert.equal(after.status.phase, "Running");
      assert.equal(after.status.containerStatuses[0]!.containerID, before.status.containerStatuses[0]!.containerID);
      assert.equal(after.status.containerStatuses[0]!.restartCount, 0);
      assert.equal((await c.kubectl(["exec", "survivor", "--", "echo", "still-here"])).trim(), "still-here");
      await deletePods(c, "survivor");
    });
  });
}
