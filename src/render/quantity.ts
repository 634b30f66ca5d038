// Kubernetes memory quantities as the guest VM sizes Kata takes (MiB): one parser for the node's
// handlers (desired-node) and the RuntimeClass overheads that follow the VM size. Pure.

const SUFFIX: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** The value of any Kubernetes quantity the apiserver accepts (binary/decimal suffixes, exponents, milli), in base units (bytes, cores). */
export function quantityValue(q: string): number {
  const m = /^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m) throw new Error(`quantity ${q} is not understood; use e.g. 2Gi, 512Mi or 250m`);
  return Number(m[1]) * (m[2] ? 10 ** Number(m[2].slice(1)) : m[3] ? SUFFIX[m[3]]! : 1);
}

/** Mebibytes from a memory quantity, rounded up (at least 1). */
export function quantityToMiB(q: string): number {
  let bytes: number;
  try {
    bytes = quantityValue(q);
  } catch {
    throw new Error(`memory quantity ${q} is not understood; use e.g. 2Gi or 512Mi`);
  }
  return Math.max(1, Math.ceil(bytes / 2 ** 20));
}
