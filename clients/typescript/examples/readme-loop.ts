// The agent loop of README.md, word for word (but for the import's path), so that tsc
// checks it; test/readme.test.ts holds the two together.
import { readFile, writeFile } from "node:fs/promises";
import { MosaicClient, type InboxItem } from "../src/index.js";

const agent = "helper";
const client = new MosaicClient({ baseUrl: process.env.MOSAIC_BRIDGE_URL!, token: process.env.MOSAIC_BRIDGE_TOKEN! });
const since = await readFile(`${agent}.cursor`, "utf8").catch(() => "latest");
const me = (await client.putAgent(agent)).user_id;

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());

for await (const item of client.inbox(agent, { since: since.trim(), signal: stop.signal })) {
  if (item.type === "m.room.message" && item.event_id && item.sender !== me) {
    const { room_id, event_id } = item;
    // txn_ids from the event answered: handled twice (after a crash), answered once.
    await client.react({ agent, room_id, event_id, key: "👀", txn_id: `seen-${event_id}` });
    await client.sendMessage({
      agent, room_id, body: `You said: *${item.content.body}*`,
      thread_root: event_id, txn_id: `answer-${event_id}`,
    });
    await client.sendFile({
      agent, room_id, thread_root: event_id, txn_id: `report-${event_id}`,
      data: new TextEncoder().encode("a report\n"), filename: "report.txt", contentType: "text/plain",
    });
    await client.markRead({ agent, room_id, event_id });
  }
  await writeFile(`${agent}.cursor`, item.cursor);
}
