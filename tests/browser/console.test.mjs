// The operator console in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), against a real stack that tests/console.rs starts and describes in the
// environment. Signs in, finds the agent, watches a human's message arrive in its live
// inbox and in the traffic view, sees an error it provokes in the live errors view,
// revokes a token (which the API then refuses), and checks what a read token may see.
// On failure, a screenshot and the page's HTML go to $SCREENSHOT_DIR.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (tests/console.rs sets it)`);
  return value;
};

const CONSOLE_URL = env("CONSOLE_URL");
const BRIDGE_URL = env("BRIDGE_URL");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const READ_TOKEN = env("READ_TOKEN");
const REVOKE_ID = env("REVOKE_TOKEN_ID");
const REVOKE_TOKEN = env("REVOKE_TOKEN");
const AGENT = env("AGENT");
const DECOY_AGENT = env("DECOY_AGENT");
const ROOM_ID = env("ROOM_ID");
const CLOSED_ROOM_ID = env("CLOSED_ROOM_ID");
const HS_URL = env("HS_URL");
const HUMAN_TOKEN = env("HUMAN_TOKEN");
const SCREENSHOT_DIR = env("SCREENSHOT_DIR");
const DOCS_SCREENSHOT = process.env.DOCS_SCREENSHOT;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = { timeout: 20_000 };

/** A bridge call from outside the browser: status, errcode, request id. */
async function bridge(method, path, token, body) {
  const res = await fetch(new URL(path, BRIDGE_URL), {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  return { status: res.status, json, requestId: res.headers.get("x-request-id") };
}

/** The human says `text` in the room (Client-Server API). */
async function humanSays(text) {
  const txn = `console-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  const url = new URL(
    `_matrix/client/v3/rooms/${encodeURIComponent(ROOM_ID)}/send/m.room.message/${txn}`,
    HS_URL.endsWith("/") ? HS_URL : `${HS_URL}/`,
  );
  const res = await fetch(url, {
    method: "PUT",
    headers: { Authorization: `Bearer ${HUMAN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ msgtype: "m.text", body: text }),
  });
  assert.equal(res.status, 200, `the human's message: ${await res.text()}`);
}

const numberIn = async (locator) => Number((await locator.textContent()).trim());

/** Waits until the number in the element `selector` exceeds `before`; says what it saw. */
async function numberRises(page, selector, before, what) {
  try {
    await page.waitForFunction(
      ([sel, was]) => Number(document.querySelector(sel)?.textContent) > was,
      [selector, before],
      WAIT,
    );
  } catch (e) {
    const now = await page.locator(selector).textContent().catch(() => "(absent)");
    throw new Error(`${what} stayed at ${now} (it was ${before}): ${e.message}`);
  }
}

test("the operator console, in headless Chromium", async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The one error the page provokes on purpose: a refused sign-in's 403.
    if (m.type() === "error" && !/status of 403/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  let step = "start";
  try {
    step = "sign in with a refused token";
    await page.goto(CONSOLE_URL);
    await page.fill("#token", "mas_not-a-token-of-this-daemon");
    await page.click("#sign-in-form button");
    await page.locator("#sign-in-error", { hasText: "refused" }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused token is not kept");

    step = "sign in as admin";
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#sign-in-form button");
    await page.locator("#who", { hasText: "admin token" }).waitFor(WAIT);
    assert.ok(await page.locator("#nav-tokens").isVisible(), "an admin sees the tokens view");

    step = "search and find the agent";
    const prefix = AGENT.slice(0, AGENT.length - 2);
    await page.fill("#agent-search", prefix);
    const row = page.locator(`tr[data-agent="${AGENT}"]`);
    await row.waitFor(WAIT);
    await page.locator("#agent-status", { hasText: `starting with “${prefix}”` }).waitFor(WAIT);
    assert.equal(await page.locator(`tr[data-agent="${DECOY_AGENT}"]`).count(), 0, "the search narrows");
    assert.equal(await numberIn(row.locator("[data-field=rooms]")), 1);
    assert.ok(Number.isInteger(await numberIn(row.locator("[data-field=inbox_depth]"))));

    step = "the traffic view before the message";
    await page.click("nav a[data-view=activity]");
    const eventsTotal = page.locator("[data-stat=events] [data-field=total]");
    await eventsTotal.waitFor(WAIT);
    const eventsBefore = await numberIn(eventsTotal);

    step = "open the agent";
    await page.goto(`${CONSOLE_URL}#agent/${AGENT}`);
    await page.locator(`#agent-rooms li[data-room="${ROOM_ID}"]`).waitFor(WAIT);
    const depth = page.locator("#agent-facts [data-field=inbox_depth]");
    await depth.waitFor(WAIT);
    const depthBefore = await numberIn(depth);
    assert.ok(Number.isInteger(depthBefore), `inbox depth ${await depth.textContent()}`);
    await page.locator("#inbox-state[data-state=open]").waitFor(WAIT);

    step = "watch a message arrive";
    const text = `hello from the console test ${Date.now()}`;
    await humanSays(text);
    await page.locator("#agent-inbox li", { hasText: text }).waitFor(WAIT);
    await numberRises(page, "#agent-facts [data-field=inbox_depth]", depthBefore, "the inbox depth");
    if (DOCS_SCREENSHOT) await page.screenshot({ path: `${DOCS_SCREENSHOT}-agent.png` });

    step = "the message in the traffic view";
    await page.click("nav a[data-view=activity]");
    await numberRises(page, "[data-stat=events] [data-field=total]", eventsBefore, "the events received");

    step = "an error appears live";
    const failed = await bridge("POST", "bridge/v1/messages", ADMIN_TOKEN, {
      agent: AGENT,
      room_id: CLOSED_ROOM_ID,
      body: "into a room the agent cannot join",
    });
    assert.equal(failed.status, 502, `the provoked error: ${JSON.stringify(failed.json)}`);
    const errorRow = page.locator("#error-rows tr[data-source=bridge]", { hasText: failed.requestId });
    await errorRow.waitFor(WAIT);
    assert.match(await errorRow.textContent(), /POST \/bridge\/v1\/messages/);
    assert.equal((await errorRow.locator("[data-field=status]").textContent()).trim(), "502");
    assert.equal((await errorRow.locator("[data-field=errcode]").textContent()).trim(), failed.json.errcode);
    if (DOCS_SCREENSHOT) await page.screenshot({ path: `${DOCS_SCREENSHOT}-activity.png` });

    step = "revoke a token";
    assert.equal((await bridge("GET", "bridge/v1/agents?limit=1", REVOKE_TOKEN)).status, 200);
    await page.click("nav a[data-view=tokens]");
    const tokenRow = page.locator(`tr[data-token-id="${REVOKE_ID}"]`);
    await tokenRow.waitFor(WAIT);
    await tokenRow.locator("button[data-action=revoke]").click();
    await tokenRow.locator("button", { hasText: "Confirm revoke" }).click();
    await tokenRow.waitFor({ state: "detached", ...WAIT });
    const refused = await bridge("GET", "bridge/v1/agents?limit=1", REVOKE_TOKEN);
    assert.equal(refused.status, 403, "the revoked token is refused");
    assert.equal(refused.json.errcode, "M_FORBIDDEN");

    step = "a read token";
    await page.click("#sign-out");
    await page.locator("#sign-in").waitFor(WAIT);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, "signing out forgets the token");
    await page.fill("#token", READ_TOKEN);
    await page.click("#sign-in-form button");
    await page.locator("#who", { hasText: "read token" }).waitFor(WAIT);
    assert.equal(await page.locator("#nav-tokens").isVisible(), false, "no tokens view for a read token");
    await page.goto(`${CONSOLE_URL}#tokens`);
    await page.locator("#tokens-refused").waitFor(WAIT);
    assert.equal(await page.locator("#token-table").count(), 0);
    assert.equal((await bridge("GET", "bridge/v1/tokens", READ_TOKEN)).status, 403);
    // It sees the agents and the errors.
    await page.click("nav a[data-view=activity]");
    await page.locator("#error-rows tr[data-source=bridge]", { hasText: failed.requestId }).waitFor(WAIT);
    await page.click("nav a[data-view=agents]");
    await page.locator(`tr[data-agent="${AGENT}"]`).waitFor(WAIT);

    assert.deepEqual(problems, [], "no script errors and no blocked resources");
  } catch (error) {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const name = step.replace(/[^a-z0-9]+/gi, "-");
    const shot = join(SCREENSHOT_DIR, `${name}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    writeFileSync(join(SCREENSHOT_DIR, `${name}.html`), await page.content().catch(() => ""));
    throw new Error(
      `step "${step}" failed: ${error.message}\n(screenshot: ${shot}; page problems seen: ${JSON.stringify(problems)})`,
      { cause: error },
    );
  } finally {
    await browser.close();
  }
});
