#!/usr/bin/env node
// sandboxctl (also the kubectl plugin `kubectl sandbox`): install, uninstall, status, doctor,
// version. Each command returns an exit code from exit-codes.ts; docs/cli.md documents them.
import { basename } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { KubeClient } from "../kube/client.js";
import { classify, EXIT } from "./exit-codes.js";
import { parseDuration } from "./duration.js";
import { connect, processIo, type ConnectOptions } from "./io.js";
import { install } from "./install.js";
import { uninstall } from "./uninstall.js";
import { status } from "./status.js";
import { doctor } from "./doctor.js";
import { hostProbe } from "./host-probe.js";
import { renderVersion, versionInfo } from "./version.js";

const duration = (v: string) => {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

export function program(run: (fn: () => Promise<number>) => Promise<void>): Command {
  const asPlugin = basename(process.argv[1] ?? "").startsWith("kubectl-");
  const io = processIo();
  const root = new Command(asPlugin ? "kubectl sandbox" : "sandboxctl")
    .description("Install, inspect and remove sandbox-operator (Kata Containers and gVisor behind RuntimeClass `sandboxed`).")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .showHelpAfterError()
    .exitOverride();
  const conn = (): ConnectOptions => root.opts<ConnectOptions>();
  const withClient = async (fn: (c: KubeClient) => Promise<number>) => {
    const client = await connect(conn());
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  };

  root
    .command("install")
    .description("Server-side apply the manifests to the cluster and wait until the controller is ready.")
    .option("--dry-run", "print the manifests instead of applying them", false)
    .option("--timeout <duration>", "how long to wait for the controller (e.g. 90s, 5m)", duration, 300_000)
    .option("--no-wait", "apply and return without waiting")
    .option("--image <repository@sha256:digest>", "image to run instead of the one recorded in deploy/image.json")
    .option("--gvisor-payload <repository@sha256:digest>", "gVisor payload image the agent installs, instead of the one recorded in deploy/image.json")
    .option("--service-monitor", "also apply a prometheus-operator ServiceMonitor", false)
    .action((o: { dryRun: boolean; timeout: number; wait: boolean; image?: string; gvisorPayload?: string; serviceMonitor: boolean }) =>
      run(async () => {
        const opts = { dryRun: o.dryRun, timeoutMs: o.timeout, wait: o.wait, image: o.image, gvisorPayload: o.gvisorPayload, serviceMonitor: o.serviceMonitor };
        if (o.dryRun) return install(undefined, opts, io);
        return withClient((c) => install(c, opts, io));
      }),
    );

  root
    .command("uninstall")
    .description("Delete the SandboxConfig, wait until every node is reverted, then remove the operator.")
    .option("--timeout <duration>", "how long to wait for the nodes to be reverted", duration, 600_000)
    .option("--keep-crds", "keep the sandboxing.dev CRDs", false)
    .option("--force", "remove the operator even if SandboxNodes remain (their nodes keep their configuration)", false)
    .option("--abandon-node <node>", "let go of a node whose revert cannot finish (agent gone, revert failed); it keeps its sandbox runtime configuration (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .action((o: { timeout: number; keepCrds: boolean; force: boolean; abandonNode: string[] }) => run(() => withClient((c) => uninstall(c, { timeoutMs: o.timeout, keepCrds: o.keepCrds, force: o.force, abandonNodes: o.abandonNode }, io))));

  root
    .command("status")
    .description("Per-node table: node, backend, state, reason, age.")
    .option("-w, --watch", "redraw as the rollout moves (Ctrl-C to stop)", false)
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json", "yaml"]).default("table"))
    .action((o: { watch: boolean; output: "table" | "json" | "yaml" }) =>
      run(() =>
        withClient((c) => {
          const ac = new AbortController();
          process.once("SIGINT", () => ac.abort());
          return status(c, { output: o.output, watch: o.watch, signal: ac.signal }, io);
        }),
      ),
    );

  root
    .command("doctor")
    .description("Probe this machine as the node agent would and say which sandbox backends can run here.")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .option("--host-root <dir>", "root of the host to probe", "/")
    .option("--cri-socket <path>", "CRI socket (default: the well-known containerd and CRI-O sockets)")
    .option("--payload-dir <dir>", "runsc + containerd-shim-runsc-v1 the agent would install (count as installable)")
    .action((o: { output: "text" | "json"; hostRoot: string; criSocket?: string; payloadDir?: string }) =>
      run(async () => doctor(hostProbe({ hostRoot: o.hostRoot, criSocket: o.criSocket, payloadDir: o.payloadDir }), { output: o.output }, io)),
    );

  root
    .command("version")
    .description("Print the version.")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action((o: { output: "text" | "json" }) =>
      run(async () => {
        io.out(renderVersion(versionInfo(), o.output));
        return EXIT.ok;
      }),
    );
  return root;
}

async function main(): Promise<void> {
  let code: number = EXIT.ok;
  const run = async (fn: () => Promise<number>) => {
    try {
      code = await fn();
    } catch (err) {
      const { code: c, message } = classify(err);
      process.stderr.write(`error: ${message}\n`);
      code = c;
    }
  };
  try {
    await program(run).parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other parse failure is a usage error.
      code = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else {
      const { code: c, message } = classify(err);
      process.stderr.write(`error: ${message}\n`);
      code = c;
    }
  }
  process.exitCode = code;
}

await main();
