// Writes every generated manifest under deploy/ and examples/; `npm run generate`. A test fails
// when the committed files differ from what this produces.
import { writeGenerated } from "./write-generated.js";

for (const path of writeGenerated()) console.log(`wrote ${path}`);
