// waitCriReady against a socket that accepts connections but never answers (a runtime still
// starting): every attempt goes over one connection (a client per attempt opened one each and
// left them half-open, which CRI-O's cmux then waited for forever at its next stop).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { runtimeHandlerFromInfo, waitCriReady } from "./client.js";

it("waitCriReady: one connection for all attempts", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-cri-"));
  const socket = join(dir, "silent.sock");
  const conns: Socket[] = [];
  const server = createServer((s) => {
    conns.push(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    await assert.rejects(waitCriReady(socket, 6_500), /not ready after 6500 ms: CRI Version: DEADLINE_EXCEEDED/);
    assert.equal(conns.length, 1, `attempts opened ${conns.length} connections`);
  } finally {
    for (const s of conns) s.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

it("runtimeHandlerFromInfo: CRI-O's spec annotation, containerd's runtimeHandler, the default runtime otherwise", () => {
  assert.equal(runtimeHandlerFromInfo(JSON.stringify({ pid: 1, runtimeSpec: { annotations: { "io.kubernetes.cri-o.RuntimeHandler": "gvisor" } } })), "gvisor");
  assert.equal(runtimeHandlerFromInfo(JSON.stringify({ runtimeHandler: "kata" })), "kata");
  assert.equal(runtimeHandlerFromInfo(JSON.stringify({ runtimeSpec: {} })), "");
  assert.equal(runtimeHandlerFromInfo(undefined), "");
  assert.equal(runtimeHandlerFromInfo("not json"), "");
});
