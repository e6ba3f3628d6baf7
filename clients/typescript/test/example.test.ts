/**
 * The README's agent loop (examples/agent-loop.ts) run as a process against the daemon:
 * from a stored cursor, it answers a human's message in its thread with a reaction, a
 * reply and a file, stores the cursor, and stops cleanly on SIGINT.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { adminClient, testEnv } from "./support/env.js";
import { roomWithAgent, say } from "./support/human.js";
import { eventually, within } from "./support/wait.js";

const EXAMPLE = fileURLToPath(new URL("../examples/agent-loop.js", import.meta.url));

type RoomEvent = { event_id: string; type: string; sender: string; content: Record<string, unknown> };

test("the agent loop example answers in the thread and stops on SIGINT", { timeout: 60_000 }, async () => {
  const client = adminClient();
  const { agent, room } = await roomWithAgent("ts-loop");
  const dir = await mkdtemp(join(tmpdir(), "mosaic-loop-"));
  const cursorFile = join(dir, "cursor");
  await writeFile(cursorFile, (await client.events(agent, { since: "latest" })).next);
  const env = { ...process.env, MOSAIC_BRIDGE_URL: testEnv().bridgeUrl, MOSAIC_BRIDGE_TOKEN: testEnv().bridgeToken };
  const loop = spawn(process.execPath, [EXAMPLE, agent, cursorFile], { env, stdio: ["ignore", "inherit", "pipe"] });
  let log = "";
  loop.stderr.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => loop.on("exit", (code) => resolve(code)));
  try {
    const asked = await say(room, "please send the report");
    const inThread = (e: RoomEvent) => (e.content["m.relates_to"] as { event_id?: string } | undefined)?.event_id === asked;
    // The loop must not end before it answered: its exit fails the test at once.
    const died = exited.then((code) => {
      throw new Error(`the loop exited (${code}) before it answered: ${log}`);
    });
    const answered = eventually(30_000, () => `the loop's answers (its log: ${log})`, async () => {
      const page = await client.roomMessages(room, agent, { dir: "b", limit: 30 });
      const answers = (page.events as RoomEvent[]).filter(inThread);
      return answers.some((e) => e.content.msgtype === "m.file") ? answers : undefined;
    });
    const events = await Promise.race([answered, died]);
    const kinds = events.map((e) => (e.type === "m.reaction" ? "reaction" : String(e.content.msgtype)));
    assert.deepEqual(kinds.sort(), ["m.file", "m.text", "reaction"], JSON.stringify(events));
    const cursor = await eventually(10_000, "the stored cursor", async () => {
      const stored = (await readFile(cursorFile, "utf8")).trim();
      const page = await client.events(agent, { limit: 100 });
      const item = page.events.find((e) => e.event_id === asked);
      return item && BigInt(stored) >= BigInt(item.cursor) ? stored : undefined;
    });
    assert.match(cursor, /^[0-9]+$/);
    loop.kill("SIGINT");
    assert.equal(await within(10_000, "the loop's exit", exited), 0, log);
    assert.match(log, /stopped/);
  } finally {
    loop.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});
