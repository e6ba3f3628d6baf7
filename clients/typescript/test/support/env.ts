/**
 * What the tests against a running daemon need, from the environment (the Rust test
 * tests/typescript_client.rs starts a homeserver and a daemon and sets these):
 * MOSAIC_BRIDGE_URL, MOSAIC_BRIDGE_TOKEN (an admin token), MOSAIC_HS_URL, and a human user
 * of that homeserver, MOSAIC_HUMAN_ID with MOSAIC_HUMAN_TOKEN (an access token).
 */

import { randomBytes } from "node:crypto";

import { MosaicClient, type ClientOptions } from "../../src/index.js";

export interface TestEnv {
  bridgeUrl: string;
  bridgeToken: string;
  hsUrl: string;
  humanId: string;
  humanToken: string;
}

let cached: TestEnv | undefined;

/** The environment; throws naming every missing variable. */
export function testEnv(): TestEnv {
  if (cached) return cached;
  const names = ["MOSAIC_BRIDGE_URL", "MOSAIC_BRIDGE_TOKEN", "MOSAIC_HS_URL", "MOSAIC_HUMAN_ID", "MOSAIC_HUMAN_TOKEN"];
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(", ")} not set: these tests run against a daemon (cargo test --test typescript_client starts one)`,
    );
  }
  const env = (name: string) => process.env[name] as string;
  cached = {
    bridgeUrl: env("MOSAIC_BRIDGE_URL"),
    bridgeToken: env("MOSAIC_BRIDGE_TOKEN"),
    hsUrl: env("MOSAIC_HS_URL"),
    humanId: env("MOSAIC_HUMAN_ID"),
    humanToken: env("MOSAIC_HUMAN_TOKEN"),
  };
  return cached;
}

/** A client of the daemon with the admin token; `options` override. */
export function adminClient(options: Partial<ClientOptions> = {}): MosaicClient {
  const env = testEnv();
  return new MosaicClient({ baseUrl: env.bridgeUrl, token: env.bridgeToken, ...options });
}

/** A name unlikely to repeat across runs: `<prefix>-<8 hex>` (a valid agent slug). */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}
