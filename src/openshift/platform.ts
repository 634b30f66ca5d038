// Platform detection (I/O shell): asks the apiserver which OpenShift APIs it serves and reads
// Infrastructure/cluster; the decision itself is the pure decidePlatform in policy-platform.ts.
import { ApiError, type KubeClient, type KubeObject } from "../kube/client.js";
import { decidePlatform, type InstallMethodSetting, type PlatformDecision, type PlatformFacts } from "./policy-platform.js";

export { decidePlatform, choosePool } from "./policy-platform.js";
export type { PlatformDecision, PlatformFacts, PlatformStatus, InstallMethodSetting, PoolChoice } from "./policy-platform.js";

interface ApiResourceList {
  resources?: Array<{ name: string }>;
}

/** Whether the apiserver serves group/version with all the named resources; 404 = not served. */
export async function servesApi(client: KubeClient, groupVersion: string, resources: string[]): Promise<boolean> {
  const r = await client.raw("GET", `/apis/${groupVersion}`);
  if (r.status === 404) return false;
  if (r.status !== 200) throw new ApiError(r.status, "DiscoveryFailed", `GET /apis/${groupVersion} (API discovery): HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  const served = new Set((JSON.parse(r.body) as ApiResourceList).resources?.map((x) => x.name));
  return resources.every((name) => served.has(name));
}

interface Infrastructure extends KubeObject {
  status?: { platform?: string; platformStatus?: { type?: string }; controlPlaneTopology?: string; infrastructureTopology?: string };
}

export async function detectPlatformFacts(client: KubeClient): Promise<PlatformFacts> {
  const [machineConfigApi, configApi] = await Promise.all([
    servesApi(client, "machineconfiguration.openshift.io/v1", ["machineconfigs", "machineconfigpools"]),
    servesApi(client, "config.openshift.io/v1", ["infrastructures"]),
  ]);
  const facts: PlatformFacts = { machineConfigApi, configApi };
  if (!configApi) return facts;
  const infra = await client.getOrNull<Infrastructure>("Infrastructure", "cluster");
  if (!infra) {
    facts.infrastructureError = "config.openshift.io/v1 is served but Infrastructure/cluster does not exist, so the platform type is unknown";
    return facts;
  }
  const s = infra.status ?? {};
  // platformStatus.type replaced the deprecated status.platform; older clusters only fill the latter.
  facts.infrastructure = { platformType: s.platformStatus?.type || s.platform || undefined, controlPlaneTopology: s.controlPlaneTopology, infrastructureTopology: s.infrastructureTopology };
  return facts;
}

/** Discovery + decision: the value for SandboxConfig.status.platform, and an error when the requested method cannot work. */
export async function detectPlatform(client: KubeClient, requested: InstallMethodSetting = "Auto"): Promise<PlatformDecision & { facts: PlatformFacts }> {
  const facts = await detectPlatformFacts(client);
  return { ...decidePlatform(facts, requested), facts };
}
