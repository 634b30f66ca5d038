// Builds the upstream binaries the tests and the demo use into the cache, only those missing:
// every component, or just the ones named on the command line (`tsx test/harness/build.ts etcd runsc`).
import { COMPONENTS, ensureBinary } from "./binaries.js";

const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !(n in COMPONENTS));
if (unknown.length) {
  process.stderr.write(`unknown component(s) ${unknown.join(", ")}; known: ${Object.keys(COMPONENTS).join(", ")}\n`);
  process.exit(2);
}
const names = wanted.length ? wanted : Object.keys(COMPONENTS);
for (const name of names) {
  await ensureBinary(name);
}
console.log(`setup: upstream binaries ready (${names.join(", ")})`);
