/**
 * The mosaic-as bridge API for TypeScript: {@link MosaicClient} (one method per route,
 * retries honouring `Retry-After`, an async iterator over the inbox's event stream that
 * resumes from its cursor), its errors, and the types generated from the daemon's OpenAPI
 * document.
 */

export { MosaicClient, newTxnId, type ClientOptions, type FileMessage, type UploadOptions } from "./client.js";
export { BridgeError, ConnectionError, ProtocolError, type ErrorAnswer } from "./errors.js";
export { LATEST, type InboxOptions, type ReconnectInfo } from "./inbox.js";
export { SseParser, type SseFrame } from "./sse.js";
export type { RetryInfo } from "./transport.js";
export type * from "./types.js";
export type { components, operations, paths } from "./schema.js";
