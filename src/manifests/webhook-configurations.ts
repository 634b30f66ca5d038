// HOOK for the admission webhook's configurations: the admission component's builder goes here
// (Validating/MutatingWebhookConfiguration pointing at the webhook Service). Until it is wired,
// no webhook configuration is rendered and the webhook Deployment serves nothing the apiserver calls.
import type { Manifest, WebhookContext } from "./render-deploy.js";

export function webhookConfigurations(_ctx: WebhookContext): Manifest[] {
  return [];
}
