/**
 * Names for the generated types of the bridge API (src/schema.ts, from the daemon's
 * OpenAPI document). Answers are taken from the operations themselves, so a change of
 * what a route answers changes the client's signatures at the next `npm run generate`.
 */

import type { components, operations } from "./schema.js";

type Schemas = components["schemas"];

/** The JSON body a route takes. */
export type RequestBody<Op extends keyof operations> = operations[Op] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;

/** The JSON of a route's success answer (200, or 201 for a creation). */
export type Answer<Op extends keyof operations> = operations[Op]["responses"] extends {
  200: { content: { "application/json": infer A } };
}
  ? A
  : operations[Op]["responses"] extends { 201: { content: { "application/json": infer A } } }
    ? A
    : never;

/** A route's query parameters. */
export type QueryOf<Op extends keyof operations> = NonNullable<operations[Op]["parameters"]["query"]>;

export type AgentSlug = Schemas["AgentSlug"];
export type RoomId = Schemas["RoomId"];
export type EventId = Schemas["EventId"];
export type UserId = Schemas["UserId"];
export type MxcUri = Schemas["MxcUri"];
export type Scope = Schemas["Scope"];
export type MsgType = Schemas["MsgType"];

export type SendRequest = RequestBody<"send_message">;
export type ReactionRequest = RequestBody<"react">;
export type RedactionRequest = RequestBody<"redact">;
export type ReceiptRequest = RequestBody<"mark_read">;
export type EventRequest = RequestBody<"send_event">;
export type TypingRequest = RequestBody<"set_typing">;
export type ProvisionRequest = RequestBody<"provision_room">;
export type LeaveRequest = RequestBody<"leave">;
export type ProfileRequest = RequestBody<"put_agent">;
export type TokenRequest = RequestBody<"create_token">;

export type EventAnswer = Answer<"send_message">;
export type UploadAnswer = Answer<"upload">;
export type Provisioned = Answer<"provision_room">;
export type HistoryPage = Answer<"history">;
export type StateAnswer = Answer<"state">;
export type MembersAnswer = Answer<"members">;
export type AgentList = Answer<"list_agents">;
export type AgentState = Answer<"get_agent">;
export type AgentProfile = Answer<"put_agent">;
export type InboxPage = Answer<"agent_events">;
export type TokenView = Answer<"create_token">;
export type TokenList = Answer<"list_tokens">;
export type ActivityReading = Answer<"activity">;
export type Empty = Answer<"mark_read">;

/** One item of an agent's inbox (a page's `events`, or one event of the stream). */
export type InboxItem = Schemas["InboxItem"];

export type HistoryQuery = Omit<QueryOf<"history">, "agent">;
export type AgentListQuery = QueryOf<"list_agents">;
export type InboxPageQuery = QueryOf<"agent_events">;
export type ActivityQuery = QueryOf<"activity">;

/** Options every method takes. */
export interface CallOptions {
  /** Stops the call (and its retries); the call rejects with the signal's reason. */
  signal?: AbortSignal;
}
