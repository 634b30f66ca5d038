// The controller's ValidatingAdmissionPolicy (pure): RBAC grants it Node patches, RuntimeClass and
// MachineConfig writes; this narrows them to our labels, our objects and our files on the nodes.
import { CONTROLLER, CONTROLLER_SCOPE_POLICY, NAMESPACE } from "./names.js";
import type { Manifest } from "./render-deploy.js";

const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
const MANAGED_BY = "sandbox-operator";
/** Node label keys the controller sets: runtime labels, the agent label (sandboxing.dev/) and the custom pool's node role. */
const NODE_ROLE_PREFIX = "node-role.kubernetes.io/";
const PROTECTED_ROLES = ["master", "control-plane", "worker", "infra"].map((r) => `'${NODE_ROLE_PREFIX}${r}'`).join(", ");
/** Where our MachineConfig writes (src/openshift/render-machineconfig.ts, RHCOS_LAYOUT). */
const MC_FILE_PREFIXES = ["/etc/crio/crio.conf.d/", "/etc/sandbox-operator/", "/etc/kata-containers/"];
const MC_EXTENSION = "sandboxed-containers";
/** The label the controller's drain cordons a Node with (src/controller/policy-rollout.ts CORDON_LABEL). */
const CORDON = "sandboxing.dev/cordoned";

const ours = (o: string) => `${o} != null && has(${o}.metadata.labels) && '${MANAGED_BY_LABEL}' in ${o}.metadata.labels && ${o}.metadata.labels['${MANAGED_BY_LABEL}'] == '${MANAGED_BY}'`;

export function controllerScopePolicy(labels: Record<string, string>): Manifest[] {
  const is = (resource: string) => `(request.resource.resource == '${resource}')`;
  const ownedKinds = "['runtimeclasses', 'machineconfigs', 'machineconfigpools']";
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: CONTROLLER_SCOPE_POLICY, labels },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["nodes"] },
            { apiGroups: ["node.k8s.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE", "DELETE"], resources: ["runtimeclasses"] },
            { apiGroups: ["machineconfiguration.openshift.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE", "DELETE"], resources: ["machineconfigs", "machineconfigpools"] },
          ],
        },
        // Only the controller's service account; admins and other components are not checked here.
        matchConditions: [{ name: "is-controller", expression: `request.userInfo.username == 'system:serviceaccount:${NAMESPACE}:${CONTROLLER}'` }],
        variables: [
          { name: "newLabels", expression: "object != null && has(object.metadata.labels) ? object.metadata.labels : {}" },
          { name: "oldLabels", expression: "oldObject != null && has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}" },
          {
            name: "changedLabels",
            expression: `variables.newLabels.filter(k, !(k in variables.oldLabels) || variables.oldLabels[k] != variables.newLabels[k]) + variables.oldLabels.filter(k, !(k in variables.newLabels))`,
          },
          { name: "objectOurs", expression: ours("object") },
          { name: "oldOurs", expression: ours("oldObject") },
        ],
        validations: [
          {
            expression: `!${is("nodes")} || variables.changedLabels.all(k, k.startsWith('sandboxing.dev/') || (k.startsWith('${NODE_ROLE_PREFIX}') && !(k in [${PROTECTED_ROLES}])))`,
            reason: "Forbidden",
            messageExpression: `'the sandbox-operator controller may change only sandboxing.dev/ labels (and its own pool role label) on Nodes, not ' + variables.changedLabels.filter(k, !k.startsWith('sandboxing.dev/')).join(', ')`,
          },
          {
            // spec.rollout.drain: spec.unschedulable may flip only together with our cordon label (set with it, cleared with it), so an admin's cordon is never lifted.
            expression:
              `!${is("nodes")} || (object.spec == oldObject.spec ? ` +
              // Spec unchanged: our cordon label stays as it is, or goes from a node that is schedulable anyway (an admin uncordoned it).
              `(('${CORDON}' in variables.newLabels) == ('${CORDON}' in variables.oldLabels) || (!('${CORDON}' in variables.newLabels) && !(has(object.spec.unschedulable) && object.spec.unschedulable))) : (` +
              `object.spec.all(k, k == 'unschedulable' || (k in oldObject.spec && oldObject.spec[k] == object.spec[k])) && oldObject.spec.all(k, k == 'unschedulable' || k in object.spec) && ` +
              `('${CORDON}' in variables.newLabels) != ('${CORDON}' in variables.oldLabels) && ` +
              `(has(object.spec.unschedulable) && object.spec.unschedulable) == ('${CORDON}' in variables.newLabels)))`,
            reason: "Forbidden",
            message: `the sandbox-operator controller may change only labels on Nodes: spec (taints, unschedulable) is not its to change, except spec.unschedulable set together with its ${CORDON} label and cleared with it (spec.rollout.drain)`,
          },
          {
            expression: `!${is("nodes")} || ((has(object.metadata.annotations) ? object.metadata.annotations : {}) == (has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}) && (has(object.metadata.finalizers) ? object.metadata.finalizers : []) == (has(oldObject.metadata.finalizers) ? oldObject.metadata.finalizers : []) && (has(object.metadata.ownerReferences) ? object.metadata.ownerReferences : []) == (has(oldObject.metadata.ownerReferences) ? oldObject.metadata.ownerReferences : []))`,
            reason: "Forbidden",
            message: "the sandbox-operator controller may change only labels on Nodes: annotations, finalizers and owner references are not its to change",
          },
          {
            expression: `!(request.resource.resource in ${ownedKinds}) || ((request.operation == 'CREATE' || variables.oldOurs) && (request.operation == 'DELETE' || variables.objectOurs))`,
            reason: "Forbidden",
            messageExpression: `'the sandbox-operator controller may create, change and delete only ' + request.resource.resource + ' labelled ${MANAGED_BY_LABEL}=${MANAGED_BY}; ' + request.name + ' is not (or would stop being) one'`,
          },
          {
            expression: `!${is("machineconfigs")} || request.operation == 'DELETE' || (has(object.metadata.labels) && 'machineconfiguration.openshift.io/role' in object.metadata.labels && object.metadata.name == '50-sandbox-operator-' + object.metadata.labels['machineconfiguration.openshift.io/role'])`,
            reason: "Forbidden",
            message: "the sandbox-operator controller's MachineConfigs are named 50-sandbox-operator-<role> after their machineconfiguration.openshift.io/role label",
          },
          {
            expression:
              `!${is("machineconfigs")} || request.operation == 'DELETE' || (` +
              `(!has(object.spec.config) || !has(object.spec.config.storage) || !has(object.spec.config.storage.files) || object.spec.config.storage.files.all(f, ${MC_FILE_PREFIXES.map((p) => `f.path.startsWith('${p}')`).join(" || ")})) && ` +
              `(!has(object.spec.config) || ((!has(object.spec.config.systemd) || !has(object.spec.config.systemd.units) || size(object.spec.config.systemd.units) == 0) && !has(object.spec.config.passwd) && (!has(object.spec.config.storage) || (!has(object.spec.config.storage.directories) && !has(object.spec.config.storage.links))))) && ` +
              `(!has(object.spec.kernelArguments) || size(object.spec.kernelArguments) == 0) && (!has(object.spec.osImageURL) || object.spec.osImageURL == '') && ` +
              `(!has(object.spec.extensions) || object.spec.extensions.all(e, e == '${MC_EXTENSION}')))`,
            reason: "Forbidden",
            message: `the sandbox-operator controller's MachineConfigs write files only under ${MC_FILE_PREFIXES.join(", ")} and add only the ${MC_EXTENSION} extension: no systemd units, users, kernel arguments, OS image or other paths`,
          },
          {
            expression: `!${is("machineconfigpools")} || request.operation == 'DELETE' || !(object.metadata.name in ['master', 'worker'])`,
            reason: "Forbidden",
            message: "the sandbox-operator controller may not create or change the master and worker MachineConfigPools; it owns only its own pool",
          },
        ],
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: CONTROLLER_SCOPE_POLICY, labels },
      spec: { policyName: CONTROLLER_SCOPE_POLICY, validationActions: ["Deny"] },
    },
  ];
}
