/** The README's agent loop is examples/readme-loop.ts, which tsc type-checks. */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

const PACKAGE = new URL("../../", import.meta.url);

test("the README's agent loop is the compiled examples/readme-loop.ts", async () => {
  const readme = await readFile(new URL("README.md", PACKAGE), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  const loop = blocks.find((b) => b.includes("for await"));
  assert.ok(loop, "README.md has no agent loop");
  const example = await readFile(new URL("examples/readme-loop.ts", PACKAGE), "utf8");
  const code = example.replace(/^\/\/.*\n/gm, "").replace('from "../src/index.js"', 'from "@mosaic-as/client"');
  assert.equal(code, loop);
});
