/**
 * {@link MosaicClient}: one method per bridge route an agent process or a coordinator
 * uses, typed with the generated schema. Writes that the bridge deduplicates carry a
 * `txn_id` (the caller's, or one drawn per call and kept across its retries), so they are
 * retried after a lost answer like reads are.
 */

import { followInbox, type InboxOptions } from "./inbox.js";
import { Transport, type Call, type TransportOptions } from "./transport.js";
import type {
  ActivityQuery,
  ActivityReading,
  AgentList,
  AgentListQuery,
  AgentProfile,
  AgentState,
  CallOptions,
  Empty,
  EventAnswer,
  EventRequest,
  HistoryPage,
  HistoryQuery,
  InboxItem,
  InboxPage,
  InboxPageQuery,
  LeaveRequest,
  MembersAnswer,
  MsgType,
  ProfileRequest,
  ProvisionRequest,
  Provisioned,
  ReactionRequest,
  ReceiptRequest,
  RedactionRequest,
  SendRequest,
  StateAnswer,
  TokenList,
  TokenRequest,
  TokenView,
  TypingRequest,
  UploadAnswer,
} from "./types.js";

export type ClientOptions = TransportOptions;

/** What {@link MosaicClient.uploadMedia} needs besides the bytes. */
export interface UploadOptions extends CallOptions {
  /** The file's MIME type (default `application/octet-stream`). */
  contentType?: string;
  /** The file's name, as the room's members see it. */
  filename?: string;
}

/** A file to send as a message: uploaded, then sent as `m.image`/`m.file`/... */
export interface FileMessage {
  agent: string;
  room_id: string;
  data: Uint8Array | ArrayBuffer | Blob;
  filename: string;
  contentType: string;
  /** Default: `m.image` for `image/*`, `m.audio`, `m.video` likewise, else `m.file`. */
  msgtype?: MsgType;
  /** The message's text (default: the file name). */
  body?: string;
  thread_root?: string;
  txn_id?: string;
}

const V1 = "/bridge/v1";

/** A new idempotency key: random, unique per logical call. */
export function newTxnId(): string {
  return `ts-${globalThis.crypto.randomUUID()}`;
}

export class MosaicClient {
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.transport = new Transport(options);
  }

  /** The daemon's URL this client calls. */
  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  // Acting in rooms (`send` scope).

  /** Sends a message (text, reply, thread, edit, or file with `url`); answers its event id. */
  sendMessage(request: SendRequest, options?: CallOptions): Promise<EventAnswer> {
    return this.write("/messages", withTxn(request), options);
  }

  /** Uploads a file and sends it as a message in one go. */
  async sendFile(file: FileMessage, options?: CallOptions): Promise<EventAnswer> {
    const upload = { contentType: file.contentType, filename: file.filename, ...options };
    const { content_uri } = await this.uploadMedia(file.agent, file.data, upload);
    const size = file.data instanceof Blob ? file.data.size : file.data.byteLength;
    return this.sendMessage(
      {
        agent: file.agent,
        room_id: file.room_id,
        body: file.body ?? file.filename,
        msgtype: file.msgtype ?? msgtypeOf(file.contentType),
        url: content_uri,
        info: { mimetype: file.contentType, size },
        thread_root: file.thread_root,
        txn_id: file.txn_id,
      },
      options,
    );
  }

  /** Reacts to an event (`m.annotation`, usually one emoji). */
  react(request: ReactionRequest, options?: CallOptions): Promise<EventAnswer> {
    return this.write("/reactions", withTxn(request), options);
  }

  /** Redacts an event. */
  redact(request: RedactionRequest, options?: CallOptions): Promise<EventAnswer> {
    return this.write("/redactions", withTxn(request), options);
  }

  /** Marks the room (or a thread) read up to an event: read receipt and read marker. */
  markRead(request: ReceiptRequest, options?: CallOptions): Promise<Empty> {
    return this.write("/receipts", request, options);
  }

  /** Sends any room or state event the agent may send. */
  sendEvent(request: EventRequest, options?: CallOptions): Promise<EventAnswer> {
    return this.write("/events", withTxn(request), options);
  }

  /** Turns the agent's typing indicator on or off. */
  setTyping(request: TypingRequest, options?: CallOptions): Promise<Empty> {
    return this.write("/typing", request, options);
  }

  /** Uploads bytes as the agent; answers their `mxc://` URI. Not retried after a lost answer. */
  uploadMedia(agent: string, data: Uint8Array | ArrayBuffer | Blob, options: UploadOptions = {}): Promise<UploadAnswer> {
    const contentType = options.contentType ?? "application/octet-stream";
    return this.transport.call({
      method: "POST",
      path: `${V1}/media`,
      query: { agent, filename: options.filename },
      bytes: { data, contentType },
      idempotent: false,
      signal: options.signal,
    });
  }

  /** Takes the agent out of a room. */
  leaveRoom(roomId: string, request: LeaveRequest, options?: CallOptions): Promise<Empty> {
    return this.write(`/rooms/${seg(roomId)}/leave`, request, options);
  }

  // Rooms as the agent sees them (`read`).

  /** A page of the room's history (`next` is the `from` of the following page). */
  roomMessages(roomId: string, agent: string, query: HistoryQuery = {}, options?: CallOptions): Promise<HistoryPage> {
    return this.read(`/rooms/${seg(roomId)}/messages`, { ...query, agent }, options);
  }

  /** The room's current state events. */
  roomState(roomId: string, agent: string, options?: CallOptions): Promise<StateAnswer> {
    return this.read(`/rooms/${seg(roomId)}/state`, { agent }, options);
  }

  /** The room's joined members. */
  roomMembers(roomId: string, agent: string, options?: CallOptions): Promise<MembersAnswer> {
    return this.read(`/rooms/${seg(roomId)}/members`, { agent }, options);
  }

  // Provisioning (`provision`).

  /** Creates a room with users invited and agents joined; a `txn_id` never creates two. */
  provisionRoom(request: ProvisionRequest, options?: CallOptions): Promise<Provisioned> {
    return this.write("/provision/rooms", withTxn(request), options);
  }

  // Agents (`read`, `profile`).

  /** The agents this token acts for, a page at a time. */
  listAgents(query: AgentListQuery = {}, options?: CallOptions): Promise<AgentList> {
    return this.read("/agents", query, options);
  }

  /** One agent's state: rooms, typing, queued sends. */
  getAgent(agent: string, options?: CallOptions): Promise<AgentState> {
    return this.read(`/agents/${seg(agent)}`, {}, options);
  }

  /** Creates the agent, or changes its profile. */
  putAgent(agent: string, profile: ProfileRequest = {}, options?: CallOptions): Promise<AgentProfile> {
    return this.send({ method: "PUT", path: `${V1}/agents/${seg(agent)}`, json: profile, idempotent: true }, options);
  }

  /** Removes the agent: it leaves its rooms, its inbox and profile are deleted. */
  deleteAgent(agent: string, options?: CallOptions): Promise<Empty> {
    return this.send({ method: "DELETE", path: `${V1}/agents/${seg(agent)}`, idempotent: true }, options);
  }

  // The inbox (`read`).

  /** One page of the inbox (a long-poll with `timeout_ms`). */
  events(agent: string, query: InboxPageQuery = {}, options?: CallOptions): Promise<InboxPage> {
    return this.read(`/agents/${seg(agent)}/events`, query, options);
  }

  /**
   * The inbox as it arrives, over Server-Sent Events, resuming after dropped connections:
   * `for await (const item of client.inbox("coder", { since }))`.
   */
  inbox(agent: string, options: InboxOptions = {}): AsyncGenerator<InboxItem, void, undefined> {
    return followInbox(this.transport, agent, options);
  }

  // Tokens (`admin`).

  /** Issues a token; its value is in this answer only. Not retried after a lost answer. */
  createToken(request: TokenRequest, options?: CallOptions): Promise<TokenView> {
    return this.send({ method: "POST", path: `${V1}/tokens`, json: request, idempotent: false }, options);
  }

  /** Every issued token, without values. */
  listTokens(options?: CallOptions): Promise<TokenList> {
    return this.read("/tokens", {}, options);
  }

  /** Revokes a token at once. */
  revokeToken(id: string, options?: CallOptions): Promise<Empty> {
    return this.send({ method: "DELETE", path: `${V1}/tokens/${seg(id)}`, idempotent: true }, options);
  }

  // Operations (`read`).

  /** One reading of the traffic counters and the latest errors (the console's live view). */
  activity(query: ActivityQuery = {}, options?: CallOptions): Promise<ActivityReading> {
    return this.read("/activity", query, options);
  }

  private read<T>(path: string, query: Call["query"], options?: CallOptions): Promise<T> {
    return this.send({ method: "GET", path: V1 + path, query, idempotent: true }, options);
  }

  /** A POST the bridge deduplicates (by its `txn_id`) or that sets a state. */
  private write<T>(path: string, body: unknown, options?: CallOptions): Promise<T> {
    return this.send({ method: "POST", path: V1 + path, json: body, idempotent: true }, options);
  }

  private send<T>(call: Call, options?: CallOptions): Promise<T> {
    return this.transport.call<T>({ ...call, signal: options?.signal });
  }
}

/** The request with a `txn_id`: the caller's, or a new one for this logical call. */
function withTxn<R extends { txn_id?: string | null }>(request: R): R {
  return request.txn_id ? request : { ...request, txn_id: newTxnId() };
}

/** A path segment (room ids hold `!` and `:`). */
function seg(value: string): string {
  return encodeURIComponent(value);
}

function msgtypeOf(contentType: string): MsgType {
  if (contentType.startsWith("image/")) return "m.image";
  if (contentType.startsWith("audio/")) return "m.audio";
  if (contentType.startsWith("video/")) return "m.video";
  return "m.file";
}
