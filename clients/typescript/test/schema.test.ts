/**
 * The committed src/schema.ts is what `npm run generate` makes from the running daemon's
 * OpenAPI document now: the client's types cannot drift from the daemon.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { testEnv } from "./support/env.js";

/** The package's directory (this file runs from dist/test/). */
const PACKAGE = fileURLToPath(new URL("../../", import.meta.url));

test("src/schema.ts is what the running daemon's OpenAPI document generates", { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "mosaic-schema-"));
  try {
    const fresh = join(dir, "schema.ts");
    const script = join(PACKAGE, "scripts", "generate.mjs");
    await promisify(execFile)(process.execPath, [script, testEnv().bridgeUrl, "--output", fresh], { cwd: PACKAGE });
    const committed = await readFile(join(PACKAGE, "src", "schema.ts"), "utf8");
    const generated = await readFile(fresh, "utf8");
    if (committed !== generated) {
      const a = committed.split("\n");
      const b = generated.split("\n");
      const line = a.findIndex((l, i) => l !== b[i]);
      assert.fail(
        `src/schema.ts differs from the daemon's document from line ${line + 1}:\n` +
          `  committed: ${a[line]}\n  generated: ${b[line]}\n` +
          "run `npm run generate -- <daemon URL>` and commit src/schema.ts",
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
