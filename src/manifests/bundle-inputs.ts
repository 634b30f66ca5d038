// What the OLM bundle is made of, taken from the same renderers as deploy/: the controller and
// webhook Deployments, every component's RBAC, the Services and PDBs, and the agent's extra file.
import type { BundleInputs, CrdLike, DeploymentSpec, PlainManifest, PolicyRule } from "../openshift/render-bundle.js";
import { crds } from "./crds.js";
import { AGENT, CONTROLLER, NAMESPACE, WEBHOOK, imageReference } from "./names.js";
import {
  AGENT_NAMESPACE_RULES,
  AGENT_RULES,
  CONTROLLER_NAMESPACE_RULES,
  CONTROLLER_RULES,
  WEBHOOK_NAMESPACE_RULES,
  WEBHOOK_RULES,
  agent,
  controller,
  webhook,
  type DeployOptions,
  type Manifest,
} from "./render-deploy.js";

/**
 * OLM cannot ship the empty webhook configurations `sandboxctl install` creates (not a bundle
 * kind), so under OLM the webhook creates them itself with server-side apply. Create cannot be
 * limited by name; patch stays limited to the two named objects (WEBHOOK_RULES).
 */
export const OLM_WEBHOOK_CREATE_RULE: PolicyRule = {
  apiGroups: ["admissionregistration.k8s.io"],
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
  verbs: ["create"],
};

/** Kinds of deploy/agent.yaml that OLM does not create: the DaemonSet and the agent's admission policies. */
const AGENT_EXTRA_KINDS = new Set(["DaemonSet", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);

function deploymentSpec(objects: Manifest[], name: string): DeploymentSpec {
  const d = objects.find((m) => m.kind === "Deployment" && m.metadata.name === name);
  if (!d) throw new Error(`no ${name} Deployment among the rendered manifests`);
  return (d as unknown as { spec: DeploymentSpec }).spec;
}

// The webhook's CA Secret is pre-created (empty) by the install: the webhook may not create Secrets (docs/security.md).
const plain = (objects: Manifest[]) => objects.filter((m) => m.kind === "Service" || m.kind === "PodDisruptionBudget" || m.kind === "Secret") as unknown as PlainManifest[];

export function bundleInputs(opts: DeployOptions, version: string): BundleInputs {
  const c = controller(opts);
  const w = webhook(opts);
  return {
    version,
    image: imageReference(opts.image),
    ...(opts.image.gvisorPayload ? { gvisorPayload: imageReference(opts.image.gvisorPayload) } : {}),
    deployments: [
      { name: CONTROLLER, spec: deploymentSpec(c, CONTROLLER) },
      { name: WEBHOOK, spec: deploymentSpec(w, WEBHOOK) },
    ],
    permissions: [
      { serviceAccountName: CONTROLLER, rules: CONTROLLER_NAMESPACE_RULES as PolicyRule[] },
      { serviceAccountName: WEBHOOK, rules: WEBHOOK_NAMESPACE_RULES as PolicyRule[] },
      { serviceAccountName: AGENT, rules: AGENT_NAMESPACE_RULES as PolicyRule[] },
    ],
    clusterPermissions: [
      { serviceAccountName: CONTROLLER, rules: CONTROLLER_RULES as PolicyRule[] },
      { serviceAccountName: WEBHOOK, rules: [...(WEBHOOK_RULES as PolicyRule[]), OLM_WEBHOOK_CREATE_RULE] },
      { serviceAccountName: AGENT, rules: AGENT_RULES as PolicyRule[] },
    ],
    crds: crds() as unknown as CrdLike[],
    manifests: [...plain(c), ...plain(w)],
    suggestedNamespace: NAMESPACE,
  };
}

/**
 * deploy/openshift/agent.yaml: what an OLM install lacks (its service accounts and RBAC come from
 * the CSV): the agent DaemonSet, and the admission policies that bound the agent and the
 * controller, which OLM cannot ship.
 */
export function openshiftAgentManifests(opts: DeployOptions): Manifest[] {
  const policies = controller(opts).filter((m) => m.kind === "ValidatingAdmissionPolicy" || m.kind === "ValidatingAdmissionPolicyBinding");
  return [...agent(opts).filter((m) => AGENT_EXTRA_KINDS.has(m.kind)), ...policies];
}
