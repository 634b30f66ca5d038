// Telemetry for every component: pino loggers, a private Prometheus registry and the
// /metrics, /healthz, /readyz HTTP server.
export { logger, setLogLevel, type Logger } from "./logger.js";
export { newRegistry } from "./metrics.js";
export { startHttpServer, type HttpServer, type HttpServerOptions } from "./http.js";
