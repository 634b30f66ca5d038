// The webhook's serving certificate: self mode keeps a CA in a Secret, issues and rotates the
// serving cert from it and publishes the CA bundle; cert-manager mode reloads cert-manager's Secret.
import { X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import { ApiError, isConflict, type KubeClient, type KubeObject } from "../kube/client.js";
import { createCA, issue, loadCA, type CertificateAuthority } from "../kube/pki.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from "./policy.js";
import { caSecretName, certManagerSecretName } from "./desiredWebhooks.js";

const DAY = 86_400_000;
export const ROTATED_AT_ANNOTATION = "sandboxing.dev/ca-rotated-at";

export interface ServingPair {
  cert: string;
  key: string;
}

export interface CertSource {
  /** Refreshes from the apiserver and rotates when due; true when the serving pair changed. */
  tick(): Promise<boolean>;
  serving(): ServingPair | undefined;
  /** PEM bundle the apiserver must trust (undefined in cert-manager mode: its CA injector owns caBundle). */
  caBundle(): string | undefined;
}

type SecretObj = KubeObject & { type?: string; data?: Record<string, string> };
const b64 = (s: string) => Buffer.from(s).toString("base64");
const pemJoin = (...pems: string[]) => pems.map((p) => p.trim() + "\n").join("");
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString("utf8") : undefined);

export interface SelfSignedOptions {
  namespace: string;
  serviceName: string;
  /** Extra SANs, e.g. 127.0.0.1 when the apiserver calls a URL. */
  ips?: string[];
  caValidDays?: number;
  servingValidDays?: number;
  /** How long a new CA sits in the bundle before serving certs signed by it are used (apiserver caBundle reload). */
  propagationMs?: number;
}

/** Self mode: CA in Secret <service>-ca (ca.crt, ca.key, previous-ca.crt), serving cert in memory per replica. */
export class SelfSignedCerts implements CertSource {
  private ca?: CertificateAuthority;
  private previousCaPem?: string;
  private rotatedAt = 0;
  private current?: ServingPair & { notAfter: number; notBefore: number; issuedBy: string };
  private forceServing = false;

  constructor(
    private readonly client: KubeClient,
    private readonly o: SelfSignedOptions,
    private readonly log: Logger,
  ) {}

  serving(): ServingPair | undefined {
    return this.current;
  }

  caBundle(): string | undefined {
    if (!this.ca) return undefined;
    const keepPrevious = this.previousCaPem && Date.now() - this.rotatedAt < (this.o.servingValidDays ?? 30) * DAY && Date.parse(new X509Certificate(this.previousCaPem).validTo) > Date.now();
    return keepPrevious ? pemJoin(this.ca.certPem, this.previousCaPem!) : this.ca.certPem;
  }

  /** Issues a new serving certificate on the next tick (same CA). */
  rotateServing(): void {
    this.forceServing = true;
  }

  /** Replaces the CA, keeping the old one in the bundle; serving certs move to it after propagationMs. */
  async rotateCA(): Promise<void> {
    await this.loadOrCreateCA(true);
  }

  async tick(): Promise<boolean> {
    await this.loadOrCreateCA(false);
    return this.ensureServing();
  }

  private secretName() {
    return caSecretName(this.o.serviceName);
  }

  private async loadOrCreateCA(rotate: boolean): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const secret = await this.client.getOrNull<SecretObj>("Secret", this.secretName(), this.o.namespace);
      const stored = this.usableCA(secret);
      if (secret && stored && !rotate) return this.adopt(secret, stored);
      // Missing, expiring, unreadable or asked for: a new CA; the one served until now stays trusted.
      await this.writeCA(secret, rotate);
      rotate = false; // written, or another replica won the race: the next pass loads what is stored
    }
    throw new Error(`Secret ${this.o.namespace}/${this.secretName()}: could not load or write the webhook CA after 5 attempts`);
  }

  /** The CA in the Secret when it is complete and not within the last tenth of its validity. */
  private usableCA(secret: SecretObj | null): { certPem: string; keyPem: string } | undefined {
    const certPem = unb64(secret?.data?.["ca.crt"]);
    const keyPem = unb64(secret?.data?.["ca.key"]);
    if (!certPem || !keyPem) return undefined;
    try {
      const left = Date.parse(new X509Certificate(certPem).validTo) - Date.now();
      return left > ((this.o.caValidDays ?? 3650) * DAY) / 10 ? { certPem, keyPem } : undefined;
    } catch {
      return undefined;
    }
  }

  private async adopt(secret: SecretObj, stored: { certPem: string; keyPem: string }): Promise<void> {
    if (this.ca?.certPem !== stored.certPem) {
      this.ca = await loadCA(stored);
      this.log.info({ secret: `${this.o.namespace}/${this.secretName()}`, serial: this.ca.cert.serialNumber }, "webhook CA loaded");
    }
    this.previousCaPem = unb64(secret.data?.["previous-ca.crt"]);
    this.rotatedAt = Date.parse(secret.metadata.annotations?.[ROTATED_AT_ANNOTATION] ?? "") || 0;
  }

  private async writeCA(secret: SecretObj | null, rotate: boolean): Promise<void> {
    const previous = unb64(secret?.data?.["ca.crt"]) ?? this.ca?.certPem;
    const ca = await createCA(`${this.o.serviceName}-ca`, this.o.caValidDays ?? 3650);
    const body: SecretObj = {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: {
        name: this.secretName(),
        namespace: this.o.namespace,
        // The install manifests create this Secret: keep their labels and annotations.
        labels: { ...secret?.metadata.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: { ...secret?.metadata.annotations, [ROTATED_AT_ANNOTATION]: new Date().toISOString() },
        ...(secret ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      },
      data: { "ca.crt": b64(ca.certPem), "ca.key": b64(ca.keyPem), ...(previous ? { "previous-ca.crt": b64(previous) } : {}) },
    };
    try {
      if (secret) await this.client.replace(body);
      else await this.client.create(body);
      this.log.info({ secret: `${this.o.namespace}/${this.secretName()}`, reason: rotate ? "rotate" : secret ? "expiring or unreadable" : "missing", serial: ca.cert.serialNumber }, "webhook CA written");
    } catch (e) {
      if (!secret && e instanceof ApiError && e.status === 403) {
        throw new Error(`Secret ${this.o.namespace}/${this.secretName()} is missing and the webhook may not create Secrets (by design: see docs/security.md); the install manifests create it empty: re-run sandboxctl install or kubectl apply the manifests`, { cause: e });
      }
      if (!isConflict(e) && !(e instanceof ApiError && e.reason === "AlreadyExists")) throw e;
      this.log.info({ secret: `${this.o.namespace}/${this.secretName()}` }, "another replica wrote the webhook CA first; using theirs");
    }
  }

  private async ensureServing(): Promise<boolean> {
    const ca = this.ca!;
    const cur = this.current;
    const sameCa = cur?.issuedBy === ca.certPem;
    const propagated = Date.now() - this.rotatedAt >= (this.o.propagationMs ?? 30_000);
    const expiring = cur && cur.notAfter - Date.now() < (cur.notAfter - cur.notBefore) / 3;
    let reason: string | undefined;
    if (!cur) reason = "start";
    else if (this.forceServing) reason = "rotate";
    else if (!sameCa && propagated) reason = "new CA";
    else if (expiring) reason = "expiring";
    if (!reason) return false;
    this.forceServing = false;
    const svc = this.o.serviceName;
    const ns = this.o.namespace;
    const pair = await issue(ca, {
      commonName: `${svc}.${ns}.svc`,
      dnsNames: [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`],
      ips: this.o.ips ?? [],
      server: true,
      validDays: this.o.servingValidDays ?? 30,
    });
    const x = new X509Certificate(pair.certPem);
    this.current = { cert: pemJoin(pair.certPem, ca.certPem), key: pair.keyPem, notAfter: Date.parse(x.validTo), notBefore: Date.parse(x.validFrom), issuedBy: ca.certPem };
    this.log.info({ reason, serial: x.serialNumber, notAfter: x.validTo }, "webhook serving certificate issued");
    return true;
  }
}

/** cert-manager mode: serve tls.crt/tls.key from the Certificate's Secret and reload it when it changes. */
export class CertManagerCerts implements CertSource {
  private current?: ServingPair;

  constructor(
    private readonly client: KubeClient,
    private readonly o: { namespace: string; serviceName: string },
    private readonly log: Logger,
  ) {}

  serving(): ServingPair | undefined {
    return this.current;
  }

  caBundle(): undefined {
    return undefined;
  }

  async tick(): Promise<boolean> {
    const name = certManagerSecretName(this.o.serviceName);
    const secret = await this.client.getOrNull<SecretObj>("Secret", name, this.o.namespace);
    const cert = unb64(secret?.data?.["tls.crt"]);
    const key = unb64(secret?.data?.["tls.key"]);
    if (!cert || !key) {
      if (!this.current) throw new Error(`Secret ${this.o.namespace}/${name} has no tls.crt/tls.key yet: is cert-manager installed and the Certificate ${this.o.serviceName} Ready? (or run with --cert-source=self)`);
      this.log.warn({ secret: `${this.o.namespace}/${name}` }, "cert-manager Secret missing or empty; keeping the current certificate");
      return false;
    }
    if (cert === this.current?.cert && key === this.current.key) return false;
    this.current = { cert, key };
    this.log.info({ secret: `${this.o.namespace}/${name}`, serial: new X509Certificate(cert).serialNumber }, "serving certificate loaded from cert-manager Secret");
    return true;
  }
}
