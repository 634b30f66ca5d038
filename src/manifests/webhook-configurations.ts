// The admission webhook's Validating/MutatingWebhookConfiguration `sandbox-operator`, installed as
// empty shells: the webhook fills in its webhooks, selectors and caBundle at run time.
// Why shells: the webhook's RBAC may patch/update these two objects by name but not create them
// (creating webhook configurations is cluster-wide power), so the install creates them. They hold
// no webhooks, so with server-side apply the webhook alone owns the content and a re-run of
// `sandboxctl install` takes nothing back; uninstall deletes them before the webhook goes.
// No `webhooks: []` either: the apiserver stores an empty list as absent, so every re-apply of one
// would be a write (a new generation) although nothing changed.
import type { Manifest, WebhookContext } from "./render-deploy.js";

export function webhookConfigurations(ctx: WebhookContext): Manifest[] {
  const labels = { "app.kubernetes.io/name": "sandbox-operator", "app.kubernetes.io/part-of": "sandbox-operator", "app.kubernetes.io/component": "webhook" };
  return (["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] as const).map((kind) => ({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind,
    metadata: { name: ctx.configurationName, labels },
  }));
}
