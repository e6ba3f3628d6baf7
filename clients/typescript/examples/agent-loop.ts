/**
 * An agent's read loop: follows the agent's inbox from a stored cursor, and for every
 * message of someone else reacts 👀, answers in the message's thread (with a file when
 * asked for a report), and marks it read. The cursor is stored after each item is
 * handled, so a restart goes on where it stopped; the answers' `txn_id`s come from the
 * event answered, so an item handled twice (a crash between the answer and the stored
 * cursor) is still answered once.
 *
 *   MOSAIC_BRIDGE_URL=http://127.0.0.1:9000 MOSAIC_BRIDGE_TOKEN=... \
 *     node dist/examples/agent-loop.js helper [CURSOR_FILE]
 *
 * Ctrl-C (SIGINT) or SIGTERM stops it.
 */

import { readFile, writeFile } from "node:fs/promises";

import { MosaicClient, type InboxItem } from "../src/index.js";

const agent = process.argv[2] ?? "helper";
const cursorFile = process.argv[3] ?? `${agent}.cursor`;
const client = new MosaicClient({
  baseUrl: process.env.MOSAIC_BRIDGE_URL ?? "http://127.0.0.1:9000",
  token: process.env.MOSAIC_BRIDGE_TOKEN ?? "",
  onRetry: (r) => console.error(`retrying ${r.method} ${r.path} in ${r.delayMs} ms: ${r.error.message}`),
});

/** The stored cursor; the first time, only what arrives from now on. */
async function storedCursor(): Promise<string> {
  try {
    return (await readFile(cursorFile, "utf8")).trim();
  } catch {
    return "latest";
  }
}

/** The thread a message belongs to: its own root, or the message itself. */
function threadOf(item: InboxItem & { event_id: string }): string {
  const relation = item.content["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined;
  return relation?.rel_type === "m.thread" && relation.event_id ? relation.event_id : item.event_id;
}

async function answer(item: InboxItem & { event_id: string }): Promise<void> {
  const { room_id, event_id } = item;
  const text = typeof item.content.body === "string" ? item.content.body : "";
  const thread_root = threadOf(item);
  await client.react({ agent, room_id, event_id, key: "👀", txn_id: `seen-${event_id}` });
  await client.setTyping({ agent, room_id, typing: true, timeout_ms: 10_000 });
  await client.sendMessage({
    agent,
    room_id,
    body: `You said: *${text}*`,
    thread_root,
    reply_to: event_id,
    txn_id: `answer-${event_id}`,
  });
  if (/report/i.test(text)) {
    const report = `Report for ${item.sender}\nasked: ${text}\nat: ${new Date(item.origin_server_ts).toISOString()}\n`;
    await client.sendFile({
      agent,
      room_id,
      data: new TextEncoder().encode(report),
      filename: "report.txt",
      contentType: "text/plain",
      thread_root,
      txn_id: `report-${event_id}`,
    });
  }
  await client.setTyping({ agent, room_id, typing: false });
  await client.markRead({ agent, room_id, event_id, thread_id: thread_root === event_id ? null : thread_root });
}

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

const me = (await client.putAgent(agent)).user_id;
console.error(`${me} follows its inbox from ${await storedCursor()}`);
const inbox = client.inbox(agent, {
  since: await storedCursor(),
  signal: stop.signal,
  onGap: (cursor) => console.error(`items after ${cursor} were removed before they were read`),
});
for await (const item of inbox) {
  if (item.type === "m.room.message" && item.event_id && item.sender !== me) {
    await answer({ ...item, event_id: item.event_id });
  }
  await writeFile(cursorFile, item.cursor);
}
console.error("stopped");
