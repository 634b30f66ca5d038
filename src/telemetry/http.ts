// The HTTP endpoints every long-running component serves: /metrics (Prometheus text from a
// private registry), /healthz (process alive) and /readyz (component says it is ready).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { logger } from "./logger.js";

export interface HttpServerOptions {
  port: number;
  host?: string;
  /** Served on /metrics when given. */
  registry?: Registry;
  /** /readyz answers 200 while this returns true. */
  ready?: () => boolean;
  /** /healthz answers 200 while this returns true (default: always). */
  healthy?: () => boolean;
}

export interface HttpServer {
  port: number;
  server: Server;
  close(): Promise<void>;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const log = logger("http");
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "Content-Type": type });
      res.end(body);
    };
    if (path === "/healthz" || path === "/livez") {
      const ok = opts.healthy?.() ?? true;
      return reply(ok ? 200 : 500, ok ? "ok\n" : "unhealthy\n");
    }
    if (path === "/readyz") {
      const ok = opts.ready?.() ?? true;
      return reply(ok ? 200 : 503, ok ? "ok\n" : "not ready\n");
    }
    if (path === "/metrics" && opts.registry) {
      opts.registry
        .metrics()
        .then((text) => reply(200, text, opts.registry!.contentType))
        .catch((e: Error) => reply(500, `metrics: ${e.message}\n`));
      return;
    }
    reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, metrics: !!opts.registry }, "http server listening");
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
