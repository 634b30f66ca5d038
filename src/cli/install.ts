// `sandboxctl install`: server-side applies the generated manifests to the current context,
// then shows the controller's rollout until it is ready (or --timeout passes).
import { crds } from "../manifests/crds.js";
import { deployOptions, toYaml } from "../manifests/files.js";
import { readImageLock } from "../manifests/image-lock.js";
import { AGENT, CONTROLLER, NAMESPACE, WEBHOOK, type ImageRef } from "../manifests/names.js";
import { installManifests, type Manifest } from "../manifests/render-deploy.js";
import { ApiError, type KubeClient, type KubeObject } from "../kube/client.js";
import { CliError, EXIT } from "./exit-codes.js";
import { sleep, type Io } from "./io.js";
import { daemonSetProgress, deploymentProgress, podProblems, progressLine, type PodLike, type WorkloadStatus } from "./render-progress.js";

export interface InstallOptions {
  dryRun: boolean;
  timeoutMs: number;
  wait: boolean;
  /** repository@sha256:... overriding deploy/image.json. */
  image?: string;
  /** repository@sha256:... of the gVisor payload image overriding deploy/image.json's (kept when only --image is given). */
  gvisorPayload?: string;
  serviceMonitor: boolean;
  pollMs?: number;
}

/** Parses `repository@sha256:<hex>` (the tag is informational only); `flag` names the option in the error. */
export function parseImage(ref: string, flag = "--image"): ImageRef {
  const m = /^(.+)@(sha256:[0-9a-f]{64})$/.exec(ref);
  if (!m) throw new CliError(EXIT.usage, `${flag} "${ref}" must be pinned by digest: <repository>@sha256:<64 hex>`);
  return { repository: m[1]!, tag: "pinned", digest: m[2]! };
}

/**
 * The operator image and its gVisor payload: deploy/image.json, with --image replacing the operator
 * image only (the payload is a separate image the agent pulls; mirror both) and --gvisor-payload
 * replacing the payload.
 */
export function installImage(opts: Pick<InstallOptions, "image" | "gvisorPayload">): ImageRef {
  const given = opts.image ? parseImage(opts.image) : undefined;
  const payload = opts.gvisorPayload ? parseImage(opts.gvisorPayload, "--gvisor-payload") : undefined;
  let lock: ImageRef | undefined;
  try {
    lock = readImageLock();
  } catch (e) {
    // With --image the lock only supplies the default payload; without it there is no image to run.
    if (!given) throw new CliError(EXIT.usage, (e as Error).message);
  }
  const base = given ?? { repository: lock!.repository, tag: lock!.tag, digest: lock!.digest };
  const gvisor = payload ? { repository: payload.repository, tag: payload.tag, digest: payload.digest } : lock?.gvisorPayload;
  return gvisor ? { ...base, gvisorPayload: gvisor } : base;
}

export function manifestsFor(opts: Pick<InstallOptions, "image" | "gvisorPayload" | "serviceMonitor">): Manifest[] {
  const image = installImage(opts);
  return installManifests({ ...deployOptions(image), serviceMonitor: opts.serviceMonitor }, crds() as unknown as Manifest[]);
}

/** The manifests as `kubectl apply -f` reads them (the generator's YAML, quoted for YAML 1.1 readers). */
export function renderManifests(objects: Manifest[]): string {
  return toYaml(objects, "");
}

const kindName = (o: Manifest) => `${o.kind}${o.metadata.namespace ? ` ${o.metadata.namespace}/` : " "}${o.metadata.name}`;

async function applyAll(client: KubeClient, objects: Manifest[], io: Io): Promise<void> {
  for (const obj of objects) {
    try {
      await client.apply(obj as unknown as KubeObject, { force: true });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && obj.kind === "ServiceMonitor") {
        throw new CliError(EXIT.error, `${kindName(obj)}: the ServiceMonitor kind is not served (prometheus-operator is not installed): install it or drop --service-monitor`);
      }
      if (e instanceof ApiError) throw new ApiError(e.status, e.reason, `applying ${kindName(obj)}: ${e.message}`, e.details);
      throw e;
    }
    io.err(`applied ${kindName(obj)}\n`);
  }
}

async function waitEstablished(client: KubeClient, names: string[], deadline: number, pollMs: number): Promise<void> {
  for (const name of names) {
    for (;;) {
      const crd = await client.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>("CustomResourceDefinition", name);
      if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new CliError(EXIT.timeout, `CustomResourceDefinition ${name} is not Established: kubectl describe crd ${name}`);
      await sleep(pollMs);
    }
  }
}

async function controllerPods(client: KubeClient): Promise<PodLike[]> {
  const list = await client.list<KubeObject & PodLike>("Pod", { namespace: NAMESPACE, labelSelector: "app.kubernetes.io/component=controller" });
  return list.items;
}

export async function install(client: KubeClient | undefined, opts: InstallOptions, io: Io): Promise<number> {
  const objects = manifestsFor(opts);
  if (opts.dryRun) {
    io.out(renderManifests(objects));
    return EXIT.ok;
  }
  if (!client) throw new CliError(EXIT.unreachable, "no cluster connection");
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 1000;
  await applyAll(client, objects, io);
  await waitEstablished(client, objects.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata.name), deadline, pollMs);
  if (!opts.wait) {
    io.out(`applied ${objects.length} objects; not waiting (--no-wait). Watch: sandboxctl status --watch\n`);
    return EXIT.ok;
  }
  io.err(`waiting up to ${Math.round(opts.timeoutMs / 1000)}s for the controller Deployment ${NAMESPACE}/${CONTROLLER}\n`);
  for (;;) {
    const [ctl, hook, ds] = await Promise.all([
      client.getOrNull<KubeObject & WorkloadStatus>("Deployment", CONTROLLER, NAMESPACE),
      client.getOrNull<KubeObject & WorkloadStatus>("Deployment", WEBHOOK, NAMESPACE),
      client.getOrNull<KubeObject & WorkloadStatus>("DaemonSet", AGENT, NAMESPACE),
    ]);
    const controller = deploymentProgress(ctl, "controller");
    io.frame([progressLine(controller), progressLine(deploymentProgress(hook, "webhook")), progressLine(daemonSetProgress(ds, "agent (nodes the controller selected)"))].join("\n") + "\n");
    if (controller.done) {
      io.out(`sandbox-operator is installed. Next: kubectl apply -f examples/sandboxconfig.yaml; sandboxctl status --watch\n`);
      return EXIT.ok;
    }
    if (Date.now() > deadline) {
      const problems = podProblems(await controllerPods(client));
      throw new CliError(
        EXIT.timeout,
        `the controller Deployment ${NAMESPACE}/${CONTROLLER} is not ready after ${Math.round(opts.timeoutMs / 1000)}s (${controller.ready}/${controller.desired} ready)` +
          (problems.length ? `:\n  ${problems.join("\n  ")}` : ": no controller pods exist yet (is the image pullable? kubectl -n sandbox-operator-system get events)") +
          `\nthe manifests stay applied; re-run install to keep waiting, or inspect: kubectl -n ${NAMESPACE} describe deployment ${CONTROLLER}`,
      );
    }
    await sleep(pollMs);
  }
}
