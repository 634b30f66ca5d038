// The harness cleans up after itself: after stop() no process, port or temp dir remains.
import { it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { startControlPlane } from "../harness/controlplane.js";
import { KubeClient } from "../../src/kube/client.js";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });

it("leaves no process, port or temp dir behind", async () => {
  const cp = await startControlPlane();
  const client = await KubeClient.fromKubeConfig(cp.kubeConfig());
  const version = await client.call<{ gitVersion: string }>("GET", "/version");
  client.close();
  assert.match(version.gitVersion, /^v1\.34\./, "the harness runs the pinned kube-apiserver");
  assert.equal(cp.pids.length, 2);
  for (const pid of cp.pids) assert.ok(alive(pid), `pid ${pid} runs while the control plane is up`);
  assert.ok(existsSync(cp.dir));
  assert.equal(await bindable(cp.ports[2]!), false, "the apiserver port is in use while up");

  await cp.stop();
  for (const pid of cp.pids) assert.equal(alive(pid), false, `pid ${pid} is gone after stop()`);
  for (const port of cp.ports) assert.ok(await bindable(port), `port ${port} is free after stop()`);
  assert.equal(existsSync(cp.dir), false, `${cp.dir} is removed after stop()`);
});
