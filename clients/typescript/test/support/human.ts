/**
 * The human user of the test homeserver, through the Matrix Client-Server API: joins the
 * rooms its agents were provisioned into and speaks there.
 */

import { randomBytes } from "node:crypto";

import { adminClient, testEnv, unique } from "./env.js";

async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const env = testEnv();
  const res = await fetch(`${env.hsUrl}/_matrix/client/v3${path}`, {
    method,
    headers: { authorization: `Bearer ${env.humanToken}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** The human joins `roomId` (it was invited). */
export async function join(roomId: string): Promise<void> {
  await call("POST", `/join/${encodeURIComponent(roomId)}`, {});
}

/** The human says `body` in `roomId`; answers the event id. */
export async function say(roomId: string, body: string): Promise<string> {
  const txn = randomBytes(8).toString("hex");
  const path = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`;
  const answer = await call("PUT", path, { msgtype: "m.text", body });
  return answer.event_id as string;
}

/** A new agent in a new room provisioned through the bridge, which the human has joined. */
export async function roomWithAgent(prefix: string): Promise<{ agent: string; room: string }> {
  const agent = unique(prefix);
  const provisioned = await adminClient().provisionRoom({
    name: `TypeScript client: ${agent}`,
    invite: [testEnv().humanId],
    agents: [agent],
  });
  if (provisioned.agent_errors && Object.keys(provisioned.agent_errors).length > 0) {
    throw new Error(`the agent did not join: ${JSON.stringify(provisioned.agent_errors)}`);
  }
  await join(provisioned.room_id);
  return { agent, room: provisioned.room_id };
}
