/**
 * One call of the bridge over `fetch`: the bearer token, JSON or raw bodies, the mapping
 * of error answers to {@link BridgeError}, and the retries: after 429 and 503 (the request
 * had no effect) for every call, waiting what `Retry-After` asks; after a connection
 * failure only for calls that are safe to repeat. Attempts and total time are bounded.
 */

import { BridgeError, ConnectionError, ProtocolError, type ErrorAnswer } from "./errors.js";
import { backoffMs, RETRY_STATUSES, retryAfterMs, sleep } from "./retry.js";

/** What a retry is about to wait for; for logs and metrics. */
export interface RetryInfo {
  method: string;
  path: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  /** The error answer that asked for the retry, or the connection failure. */
  error: BridgeError | ConnectionError;
}

export interface TransportOptions {
  /** The daemon's URL, e.g. `http://127.0.0.1:9000` (the bridge lives under `/bridge/v1`). */
  baseUrl: string;
  /** A bridge token: an admin token or an issued one (`mas_...`). */
  token: string;
  /** Further attempts after the first (default 4). */
  retries?: number;
  /** Longest time a call may spend, waits included, before it gives up (default 60 s). */
  maxRetryTimeMs?: number;
  /** Longest time one attempt may wait for its answer (default 60 s). */
  requestTimeoutMs?: number;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Told before each retry. */
  onRetry?: (info: RetryInfo) => void;
}

export type Query = Record<string, string | number | boolean | undefined>;

/** One request as the client methods describe it. */
export interface Call {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** The path below the base URL, segments already encoded. */
  path: string;
  query?: Query;
  /** A JSON body. */
  json?: unknown;
  /** A raw body with its content type (media uploads). */
  bytes?: { data: Uint8Array | ArrayBuffer | Blob; contentType: string };
  /** Safe to send again when no answer came (reads, and writes carrying a `txn_id`). */
  idempotent: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** The base delay of the client's own backoff, and its ceiling. */
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;

export class Transport {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly retries: number;
  private readonly maxRetryTimeMs: number;
  private readonly requestTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(options: TransportOptions) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required");
    if (!options.token) throw new TypeError("token is required");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.retries = Math.max(0, options.retries ?? 4);
    this.maxRetryTimeMs = options.maxRetryTimeMs ?? 60_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.onRetry = options.onRetry;
  }

  /** The absolute URL of `path` with `query` (undefined values left out). */
  url(path: string, query?: Query): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** One attempt, answered as it came (for streams); rejects only when nothing came. */
  open(call: Call, signal: AbortSignal | undefined): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      ...call.headers,
    };
    let body: RequestInit["body"];
    if (call.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(call.json);
    } else if (call.bytes !== undefined) {
      headers["content-type"] = call.bytes.contentType;
      body = call.bytes.data as RequestInit["body"];
    }
    return this.fetchImpl(this.url(call.path, call.query), {
      method: call.method,
      headers,
      body,
      signal,
    });
  }

  /** The call with its retries; answers the parsed JSON of a 2xx answer. */
  async call<T>(call: Call): Promise<T> {
    const what = `${call.method} ${call.path}`;
    const started = Date.now();
    for (let attempt = 1; ; attempt += 1) {
      let failure: BridgeError | ConnectionError;
      let wait: number | undefined;
      try {
        const res = await this.open(call, this.attemptSignal(call.signal));
        if (res.ok) return parseJson(await res.text(), what) as T;
        failure = await toBridgeError(res, what);
        if (!RETRY_STATUSES.has(res.status)) throw failure;
        wait = failure.retryAfterMs;
      } catch (e) {
        if (e instanceof BridgeError || e instanceof ProtocolError) throw e;
        if (call.signal?.aborted) throw call.signal.reason ?? e;
        failure = new ConnectionError(what, attempt, e);
        if (!call.idempotent) throw failure;
      }
      const delayMs = wait ?? backoffMs(attempt - 1, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
      const spent = Date.now() - started;
      if (attempt > this.retries || spent + delayMs > this.maxRetryTimeMs) throw failure;
      this.onRetry?.({ method: call.method, path: call.path, attempt, delayMs, error: failure });
      await sleep(delayMs, call.signal);
      if (call.signal?.aborted) throw call.signal.reason;
    }
  }

  /** The caller's signal, bounded by the per-attempt timeout. */
  private attemptSignal(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    return signal ? AbortSignal.any([signal, timeout]) : timeout;
  }
}

/** The JSON of a success answer (`{}` for an empty one). */
function parseJson(text: string, what: string): unknown {
  if (text === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError(`${what}: an answer that is not JSON: ${text.slice(0, 100)}`);
  }
}

/** The error an answer of status ≥ 400 stands for. */
export async function toBridgeError(res: Response, what: string): Promise<BridgeError> {
  const text = await res.text().catch(() => "");
  let answer: Partial<ErrorAnswer> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") answer = parsed as Partial<ErrorAnswer>;
  } catch {
    answer = { error: text.slice(0, 200) || res.statusText };
  }
  const wait = retryAfterMs(res.headers.get("retry-after"), answer.retry_after_ms ?? undefined);
  return new BridgeError(res.status, answer, wait, what);
}
