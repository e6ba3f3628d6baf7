/**
 * What a call of the bridge can fail with: the bridge answered with an error
 * ({@link BridgeError}, carrying the Matrix-style `errcode`), or no answer came at all
 * ({@link ConnectionError}, after the retries the call allowed).
 */

import type { components } from "./schema.js";

/** The error body every bridge route answers with. */
export type ErrorAnswer = components["schemas"]["ErrorAnswer"];

/** An error answer of the bridge: HTTP status, Matrix error code and message. */
export class BridgeError extends Error {
  override readonly name = "BridgeError";
  /** The HTTP status. */
  readonly status: number;
  /** The Matrix-style error code (`M_FORBIDDEN`, `M_LIMIT_EXCEEDED`, ...). */
  readonly errcode: string;
  /** The bridge's message (it names the offending field or scope). */
  readonly error: string;
  /** How long the bridge asked to wait before trying again, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /** The homeserver's status, when the homeserver refused what the agent asked. */
  readonly homeserverStatus: number | undefined;

  constructor(
    status: number,
    answer: Partial<ErrorAnswer>,
    retryAfterMs: number | undefined,
    what: string,
  ) {
    const errcode = answer.errcode ?? "M_UNKNOWN";
    const error = answer.error ?? `HTTP ${status}`;
    super(`${what}: ${status} ${errcode}: ${error}`);
    this.status = status;
    this.errcode = errcode;
    this.error = error;
    this.retryAfterMs = retryAfterMs;
    this.homeserverStatus = answer.homeserver_status ?? undefined;
  }
}

/** No answer from the bridge (refused, reset, timed out), after every attempt allowed. */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";
  /** How many times the call was tried. */
  readonly attempts: number;

  constructor(what: string, attempts: number, cause: unknown) {
    super(`${what}: cannot reach the bridge (${describe(cause)})`, { cause });
    this.attempts = attempts;
  }
}

/** A short description of a failure of `fetch` (its `cause` says what the socket saw). */
export function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    const code = (cause as { code?: unknown } | undefined)?.code;
    if (typeof code === "string") return `${e.message}: ${code}`;
    if (cause instanceof Error) return `${e.message}: ${cause.message}`;
    return e.message;
  }
  return String(e);
}

/** The bridge answered something its OpenAPI document does not allow (a malformed frame). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}
