// Builds every upstream binary the tests and the demo use into the cache, only those missing.
import { COMPONENTS, ensureBinary } from "./binaries.js";

for (const name of Object.keys(COMPONENTS)) {
  await ensureBinary(name);
}
console.log(`setup: upstream binaries ready (${Object.keys(COMPONENTS).join(", ")})`);
