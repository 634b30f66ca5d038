// Turns AdmissionReview requests into responses: reads the cached SandboxConfig and RuntimeClasses
// (the namespace's mode comes from the path the apiserver called), calls the pure policy functions and logs one line per decision.
import type { Logger } from "pino";
import type { KubeClient, KubeObject } from "../kube/client.js";
import { SANDBOXCONFIG_NAME, type SandboxConfig, type SandboxConfigSpec } from "../api/index.js";
import { ListWatchCache } from "./cache.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, admitPod, publishedClasses, validatePod, validatePodUpdate, type Pod, type Mode, type PolicyContext, type RuntimeClassInfo } from "./policy.js";
import { configRefusal, reviewSandboxConfig } from "./policyConfig.js";
import { PATHS } from "./desiredWebhooks.js";

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: string;
  subResource?: string;
  namespace?: string;
  name?: string;
  object?: unknown;
  oldObject?: unknown;
  userInfo?: { username?: string; groups?: string[] };
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  patch?: string;
  patchType?: "JSONPatch";
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: string;
  kind: "AdmissionReview";
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

type RuntimeClassObj = KubeObject & { handler?: string };

const classInfo = (rc: RuntimeClassObj): RuntimeClassInfo => ({ name: rc.metadata.name, handler: rc.handler, managed: rc.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE });

export class Admission {
  readonly configs: ListWatchCache<SandboxConfig & KubeObject>;
  readonly runtimeClasses: ListWatchCache<RuntimeClassObj>;
  private classInfo: { version: number; map: Map<string, RuntimeClassInfo> } = { version: -1, map: new Map() };

  constructor(
    private readonly client: KubeClient,
    private readonly operatorNamespace: string,
    private readonly log: Logger,
  ) {
    this.configs = new ListWatchCache(client, "SandboxConfig", log, { fieldSelector: `metadata.name=${SANDBOXCONFIG_NAME}` });
    this.runtimeClasses = new ListWatchCache(client, "RuntimeClass", log);
  }

  get synced(): boolean {
    return this.configs.isSynced && this.runtimeClasses.isSynced;
  }

  async waitSynced(): Promise<void> {
    await Promise.all([this.configs.synced, this.runtimeClasses.synced]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.configs.stop(), this.runtimeClasses.stop()]);
  }

  /** The SandboxConfig spec; null when there is none or it is being deleted (uninstall), so the pod policy stands down. */
  config(): SandboxConfigSpec | null {
    const obj = this.configs.get(SANDBOXCONFIG_NAME);
    return obj && !obj.metadata.deletionTimestamp ? obj.spec : null;
  }

  classes(): Map<string, RuntimeClassInfo> {
    if (this.classInfo.version !== this.runtimeClasses.version) {
      const map = new Map<string, RuntimeClassInfo>();
      for (const rc of this.runtimeClasses.values()) {
        map.set(rc.metadata.name, classInfo(rc));
      }
      this.classInfo = { version: this.runtimeClasses.version, map };
    }
    return this.classInfo.map;
  }

  async review(path: string, review: AdmissionReview): Promise<AdmissionReview> {
    const req = review.request;
    if (!req?.uid) throw new Error("AdmissionReview has no request.uid");
    let response: AdmissionResponse;
    const [, base, mode] = /^(\/[a-z-]+)(?:\/(enforce|audit|off))?$/.exec(path) ?? [];
    if ((base === PATHS.mutatePods || base === PATHS.validatePods) && mode) response = this.reviewPod(base, mode as Mode, req);
    else if (path === PATHS.validateConfig) response = await this.reviewConfig(req);
    else throw new Error(`no admission handler for ${path}`);
    return { apiVersion: review.apiVersion || "admission.k8s.io/v1", kind: "AdmissionReview", response };
  }

  private reviewPod(path: string, mode: Mode, req: AdmissionRequest): AdmissionResponse {
    const pod = req.object as Pod | undefined;
    const namespace = req.namespace ?? pod?.metadata.namespace ?? "";
    const old = req.oldObject as Pod | undefined;
    const update = req.operation === "UPDATE" && path === PATHS.validatePods && !!old?.spec;
    if (!pod?.spec || (req.operation !== "CREATE" && !update)) return { uid: req.uid, allowed: true };
    const ctx: PolicyContext = { config: this.config(), runtimeClasses: this.classes(), namespace, mode, operatorNamespace: this.operatorNamespace, userName: req.userInfo?.username };
    const name = pod.metadata.name ?? pod.metadata.generateName ?? "";
    const verdict = update
      ? { ...validatePodUpdate(old!, pod, ctx), patch: [], decision: undefined }
      : path === PATHS.mutatePods
        ? admitPod(pod, ctx)
        : { ...validatePod(pod, ctx), patch: [], decision: undefined };
    const fields = { webhook: path === PATHS.mutatePods ? "mutate" : "validate", operation: req.operation, subResource: req.subResource, namespace, pod: name, mode: verdict.mode, dryRun: !!req.dryRun, allowed: verdict.allowed, patchOps: verdict.patch.length, warnings: verdict.warnings.length };
    if (!verdict.allowed) this.log.info({ ...fields, message: verdict.message }, "pod refused");
    else if (verdict.patch.length || verdict.warnings.length) this.log.info({ ...fields, decision: verdict.decision, warningText: verdict.warnings }, "pod admitted");
    else this.log.debug(fields, "pod admitted unchanged");
    if (!verdict.allowed) return { uid: req.uid, allowed: false, status: { code: 403, reason: "Forbidden", message: verdict.message! } };
    return {
      uid: req.uid,
      allowed: true,
      ...(verdict.patch.length ? { patchType: "JSONPatch" as const, patch: Buffer.from(JSON.stringify(verdict.patch)).toString("base64") } : {}),
      ...(verdict.warnings.length ? { warnings: verdict.warnings } : {}),
    };
  }

  private async reviewConfig(req: AdmissionRequest): Promise<AdmissionResponse> {
    const obj = req.object as SandboxConfig | undefined;
    if (!obj?.spec?.runtimes) return { uid: req.uid, allowed: true }; // the schema refuses it already
    // Rare and consequential: read the named RuntimeClasses fresh rather than trust the cache.
    const names = [...publishedClasses(obj.spec).keys()];
    const fresh = new Map<string, RuntimeClassInfo>();
    for (const rc of await Promise.all(names.map((n) => this.client.getOrNull<RuntimeClassObj>("RuntimeClass", n)))) {
      if (rc) fresh.set(rc.metadata.name, classInfo(rc));
    }
    const review = reviewSandboxConfig(obj.spec, fresh);
    const name = obj.metadata?.name ?? req.name ?? "";
    if (review.errors.length) {
      const message = configRefusal(name, review);
      this.log.info({ webhook: "sandboxconfig", name, operation: req.operation, message }, "SandboxConfig refused");
      return { uid: req.uid, allowed: false, status: { code: 422, reason: "Invalid", message } };
    }
    this.log.info({ webhook: "sandboxconfig", name, operation: req.operation, warnings: review.warnings.length }, "SandboxConfig admitted");
    return { uid: req.uid, allowed: true, ...(review.warnings.length ? { warnings: review.warnings } : {}) };
  }
}
