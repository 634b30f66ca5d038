// The agent's /healthz endpoint: asks the loop for its watch and pass state and answers with
// policy-health's decision (200 or 503, the reason as the body); logs each change of verdict.
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import { decideHealth, type HealthInput, type HealthLimits } from "./policy-health.js";

export function serveHealth(source: { healthInput(now?: number): HealthInput }, port: number, limits: HealthLimits, log: Logger): Server {
  let lastHealthy = true;
  return createServer((req, res) => {
    if (req.url !== "/healthz") return void res.writeHead(404).end("not found");
    const h = decideHealth(source.healthInput(), limits);
    if (h.healthy !== lastHealthy) (h.healthy ? log.info : log.error).call(log, { message: h.message }, h.healthy ? "healthy again" : "unhealthy: the kubelet will restart this agent");
    lastHealthy = h.healthy;
    res.writeHead(h.healthy ? 200 : 503, { "Content-Type": "text/plain" }).end(h.message);
  }).listen(port);
}
