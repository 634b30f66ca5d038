// Table tests for the --timeout duration parser.
import { it } from "node:test";
import assert from "node:assert/strict";
import { parseDuration } from "./duration.js";

const ok: Array<[string, number]> = [["90", 90_000], ["90s", 90_000], ["5m", 300_000], ["1h30m", 5_400_000], ["250ms", 250], ["1.5s", 1500]];
for (const [text, ms] of ok) it(`${text} = ${ms} ms`, () => assert.equal(parseDuration(text), ms));
for (const bad of ["", "5 minutes", "m5", "5x", "-1s", "5m junk"]) it(`refuses "${bad}"`, () => assert.throws(() => parseDuration(bad), /is not a duration: use e\.g\. 90s, 5m or 1h30m/));
