// HOOK for the admission webhook's configurations: the admission component's builder goes here
// (Validating/MutatingWebhookConfiguration `sandbox-operator` pointing at the webhook Service).
// Until it is wired, none is rendered: the webhook's RBAC lets it patch/update these two objects
// by name but not create them (creating webhook configurations is cluster-wide power), so wire
// it before relying on the webhook. Render them WITHOUT caBundle: the webhook owns that field
// (server-side apply), and a re-run of `sandboxctl install` must not take it back.
import type { Manifest, WebhookContext } from "./render-deploy.js";

export function webhookConfigurations(_ctx: WebhookContext): Manifest[] {
  return [];
}
