/**
 * An agent's inbox as an async iterator over the bridge's Server-Sent Events stream
 * (`GET /bridge/v1/agents/{agent}/events` with `Accept: text/event-stream`). Every item
 * carries its cursor (also the frame's `id:`); when the stream ends (the daemon closes
 * streams after `limits.stream_max_s`) or the connection fails, the iterator connects
 * again with `Last-Event-ID` = the last cursor it yielded, after a backoff (or the
 * `Retry-After` of a 429/503), so no item is skipped or yielded twice. Other error
 * answers (bad token, unknown agent...) end the iteration with a {@link BridgeError}.
 */

import { BridgeError, ProtocolError } from "./errors.js";
import { backoffMs, RETRY_STATUSES, sleep } from "./retry.js";
import { SseParser, type SseFrame } from "./sse.js";
import { toBridgeError, type Call, type Transport } from "./transport.js";
import type { InboxItem, InboxPage } from "./types.js";

/** `since` for "only what arrives from now on". */
export const LATEST = "latest";

export interface InboxOptions {
  /**
   * Where to start: a cursor (an item's `cursor`, or a page's `next`): the items after it;
   * absent or `""`: from the oldest item kept; `"latest"`: only what arrives from now on.
   */
  since?: string;
  /** Ends the iteration (quietly: the loop just ends). */
  signal?: AbortSignal;
  /**
   * Told when retention removed items after the cursor before they were read (the
   * reader missed them); the iteration goes on with the oldest item kept.
   */
  onGap?: (cursor: string) => void;
  /** Told before each reconnection (with the cursor it resumes from). */
  onReconnect?: (info: ReconnectInfo) => void;
  /**
   * A connection that brings nothing, not even the daemon's keep-alive (every 15 s), for
   * this long is taken for dead and replaced (default 45 s).
   */
  idleTimeoutMs?: number;
  /** Longest wait between two failed connections (default 30 s). */
  maxBackoffMs?: number;
}

export interface ReconnectInfo {
  /** The cursor the next connection resumes after (`""`: from the oldest kept). */
  cursor: string;
  delayMs: number;
  /** Why the last connection ended: `"ended"` when the daemon closed it. */
  reason: "ended" | BridgeError | Error;
}

/** A connection that lived this long, or brought an item, resets the backoff. */
const PRODUCTIVE_MS = 5_000;
const BACKOFF_BASE_MS = 250;

class IdleTimeout extends Error {}

/** Follows `agent`'s inbox; see the module's description. */
export async function* followInbox(
  transport: Transport,
  agent: string,
  options: InboxOptions = {},
): AsyncGenerator<InboxItem, void, undefined> {
  const path = `/bridge/v1/agents/${encodeURIComponent(agent)}/events`;
  const signal = options.signal;
  const idleMs = options.idleTimeoutMs ?? 45_000;
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  let cursor = options.since ?? "";
  let failures = 0;
  while (!signal?.aborted) {
    const connection = new AbortController();
    const hangUp = () => connection.abort(signal?.reason);
    signal?.addEventListener("abort", hangUp, { once: true });
    const opened = Date.now();
    let delivered = 0;
    let reason: ReconnectInfo["reason"] = "ended";
    try {
      if (cursor === LATEST) {
        // Resolve "latest" to a cursor first: a reconnection must not skip what arrived
        // while no stream was open.
        const page = await readLatest(transport, path, connection.signal);
        for (const item of page.events) {
          cursor = item.cursor;
          delivered += 1;
          yield item;
        }
        cursor = page.next;
        continue;
      }
      const call: Call = {
        method: "GET",
        path,
        query: { since: cursor === "" ? undefined : cursor },
        headers: { accept: "text/event-stream", ...(cursor === "" ? {} : { "last-event-id": cursor }) },
        idempotent: true,
      };
      const res = await transport.open(call, connection.signal);
      if (!res.ok) {
        throw await toBridgeError(res, `GET ${path} (stream)`);
      } else if (res.body === null) {
        throw new ProtocolError(`GET ${path}: an event stream without a body`);
      } else {
        for await (const frame of frames(res.body, idleMs, connection)) {
          if (frame.event === "gap") {
            options.onGap?.(cursor);
            continue;
          }
          if (frame.event !== "event") continue;
          const item = parseItem(frame);
          // Never twice: a resumed stream starts after the cursor, but say it again here.
          if (cursor !== "" && BigInt(item.cursor) <= BigInt(cursor)) continue;
          cursor = item.cursor;
          delivered += 1;
          yield item;
        }
      }
    } catch (e) {
      if (signal?.aborted) return;
      if (e instanceof ProtocolError) throw e;
      if (e instanceof BridgeError && !RETRY_STATUSES.has(e.status)) throw e;
      reason = e instanceof Error ? e : new Error(String(e));
    } finally {
      signal?.removeEventListener("abort", hangUp);
      connection.abort();
    }
    const productive = delivered > 0 || Date.now() - opened >= PRODUCTIVE_MS;
    failures = productive ? 0 : failures + 1;
    let delayMs = reason === "ended" && productive ? 0 : backoffMs(failures, BACKOFF_BASE_MS, maxBackoff);
    if (reason instanceof BridgeError && reason.retryAfterMs !== undefined) {
      delayMs = Math.max(delayMs, reason.retryAfterMs);
    }
    options.onReconnect?.({ cursor, delayMs, reason });
    await sleep(delayMs, signal);
  }
}

/** One long-poll page with `since=latest`: its `next` is the newest cursor. */
async function readLatest(transport: Transport, path: string, signal: AbortSignal): Promise<InboxPage> {
  const call: Call = { method: "GET", path, query: { since: LATEST, limit: 100 }, idempotent: true };
  const res = await transport.open(call, signal);
  if (!res.ok) throw await toBridgeError(res, `GET ${path}`);
  const page = (await res.json()) as InboxPage;
  if (!Array.isArray(page.events) || typeof page.next !== "string") {
    throw new ProtocolError(`GET ${path}: not an inbox page`);
  }
  return page;
}

/** The frames of an event stream; a connection silent for `idleMs` is aborted. */
async function* frames(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  connection: AbortController,
): AsyncGenerator<SseFrame, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const timer = setTimeout(() => connection.abort(new IdleTimeout("the stream went silent")), idleMs);
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } finally {
        clearTimeout(timer);
      }
      if (chunk.done) return;
      yield* parser.push(decoder.decode(chunk.value, { stream: true }));
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** An `event` frame's item; its cursor must be the frame's `id:`. */
function parseItem(frame: SseFrame): InboxItem {
  let item: unknown;
  try {
    item = JSON.parse(frame.data);
  } catch {
    throw new ProtocolError(`an inbox frame that is not JSON: ${frame.data.slice(0, 100)}`);
  }
  const cursor = (item as { cursor?: unknown } | null)?.cursor;
  if (typeof cursor !== "string" || !/^[0-9]{1,18}$/.test(cursor) || (frame.id !== undefined && frame.id !== cursor)) {
    throw new ProtocolError(`an inbox item without its cursor: ${frame.data.slice(0, 100)}`);
  }
  return item as InboxItem;
}
