// The informer against a real apiserver behind a loopback TCP proxy the test controls: it
// relists periodically, restarts after dropped connections, and notices a watch gone silent.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { Informer } from "../../src/kube/informer.js";
import { eventually, node } from "../harness/cluster.js";
import { setupEnv, type Env } from "./controller-helpers.js";

/** Forwards 127.0.0.1:<port> to the apiserver; can freeze (stop moving bytes, keep sockets open) or cut every connection. */
class Proxy {
  server!: Server;
  port = 0;
  private pairs: Array<[Socket, Socket]> = [];
  async start(target: number): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(target, "127.0.0.1");
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", drop);
      upstream.on("error", drop);
      client.on("close", drop);
      upstream.on("close", drop);
      this.pairs.push([client, upstream]);
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }
  /** Existing connections go silent: no byte moves, nothing closes. New connections work. */
  freeze(): void {
    for (const [c, u] of this.pairs.splice(0)) {
      c.unpipe(u);
      u.unpipe(c);
      u.pause();
      c.pause();
    }
  }
  cut(): void {
    for (const [c, u] of this.pairs.splice(0)) {
      c.destroy();
      u.destroy();
    }
  }
  async stop(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

describe("informer on a real apiserver", () => {
  let env: Env;
  let proxy: Proxy;
  let viaProxy: KubeClient;

  before(async () => {
    env = await setupEnv();
    proxy = new Proxy();
    const kc = env.cp.kubeConfig();
    const server = new URL(kc.getCurrentCluster()!.server);
    await proxy.start(Number(server.port));
    const raw = JSON.parse(kc.exportConfig()) as { clusters: Array<{ cluster: { server: string } }> };
    for (const c of raw.clusters) c.cluster.server = `https://127.0.0.1:${proxy.port}`;
    const proxied = new KubeConfig();
    proxied.loadFromString(JSON.stringify(raw));
    viaProxy = await KubeClient.fromKubeConfig(proxied);
  });
  after(async () => {
    viaProxy?.close();
    await proxy?.stop();
    await env?.stop();
  });

  it("relists periodically even when the watch is healthy", async () => {
    const inf = new Informer<KubeObject>(viaProxy, "Namespace", { resyncMs: 700 });
    const lists = () => viaProxy.requestCounts.get("GET") ?? 0;
    inf.start();
    await inf.waitForSync();
    const before = lists();
    await new Promise((r) => setTimeout(r, 2500));
    await inf.stop();
    assert.ok(lists() - before >= 2, `expected at least 2 relists in 2.5 s, saw ${lists() - before}`);
    assert.ok(inf.get("default"));
  });

  it("restarts after every connection is cut and sees what changed meanwhile", async () => {
    const inf = new Informer<KubeObject>(viaProxy, "Node", { baseBackoffMs: 100 });
    inf.start();
    await inf.waitForSync();
    const watches = () => viaProxy.requestCounts.get("WATCH") ?? 0;
    const before = watches();
    proxy.cut();
    await env.client.create(node("cut-1"));
    await eventually("cut-1 in the cache", async () => inf.get("cut-1"), 10_000);
    assert.ok(watches() > before, "a new watch was opened after the cut");
    await env.client.delete("Node", "cut-1");
    await eventually("cut-1 gone from the cache", async () => !inf.get("cut-1"), 10_000);
    await inf.stop();
  });

  it("treats a watch that stays silent past idleMs as dead and relists", async () => {
    const inf = new Informer<KubeObject>(viaProxy, "Node", { idleMs: 1500, watchTimeoutSeconds: 60, baseBackoffMs: 100 });
    inf.start();
    await inf.waitForSync();
    await new Promise((r) => setTimeout(r, 200)); // the watch is open
    proxy.freeze();
    const restartsBefore = inf.restarts;
    await env.client.create(node("silent-1"));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(inf.get("silent-1"), undefined, "the frozen watch delivered nothing");
    await eventually("silent-1 seen after the silent watch was replaced", async () => inf.get("silent-1"), 10_000);
    assert.ok(inf.restarts > restartsBefore, "the informer restarted the silent watch");
    await inf.stop();
    await env.client.delete("Node", "silent-1");
  });
});
