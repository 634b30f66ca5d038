// The OpenShift path's public surface for the controller: platform detection, the
// MachineConfig reconcile step, and the pure renderers and tracking it is built from.
export { detectPlatform, detectPlatformFacts, servesApi } from "./platform.js";
export { decidePlatform, choosePool } from "./policy-platform.js";
export type { PlatformDecision, PlatformFacts, PlatformStatus, InstallMethodSetting, PoolChoice, NodeLabels } from "./policy-platform.js";
export { reconcileOpenShift, nodeLabelPatch } from "./reconcile.js";
export type { OpenShiftReconcileOptions, OpenShiftReconcileResult, OpenShiftPhase, ConditionInput } from "./reconcile.js";
export {
  renderMachineConfig,
  renderMachineConfigPool,
  renderIgnition,
  contentFiles,
  contentHash,
  dataUrl,
  decodeDataUrl,
  machineConfigName,
  nodeRoleLabel,
  RenderError,
  DEFAULT_CRIO_DROPIN_PATH,
  DEFAULT_POOL_ROLE,
  SANDBOX_EXTENSION,
} from "./render-machineconfig.js";
export type { MachineConfigContent, KataFile, MachineConfig, MachineConfigPool, IgnitionConfig } from "./render-machineconfig.js";
export { machineConfigRuntimeClasses, machineConfigBackends, runtimeLabel, MACHINECONFIG_BACKENDS, INSTALL_METHOD_LABEL } from "./render-runtimeclasses.js";
export { trackRollout, renderedIndex, containsOurs, renderedHasContent, renderedHasAnyPath } from "./track-rollout.js";
export type { RolloutInput, RolloutResult, NodeRollout, PoolSummary, RenderedInfo } from "./track-rollout.js";
export { renderBundle, renderCsv, bundleAnnotations } from "./render-bundle.js";
export { machineConfigNodeConditions } from "./render-node-conditions.js";
export type { BundleInputs, DeploymentSpec, PolicyRule } from "./render-bundle.js";
