// The agents view (search by slug prefix, a page at a time) and one agent's detail: its
// state, rooms and inbox depth, and its inbox followed live.

import { get, withQuery } from "./api.js";
import { el, fill, badge, when, num } from "./dom.js";
import { follow } from "./sse.js";

const PAGE = 100;
const REFRESH_MS = 5000;

function liveBadge(agent) {
  return agent.live ? badge("live", "live") : badge("idle");
}

function agentRow(a) {
  return el(
    "tr",
    { "data-agent": a.agent },
    el("td", {}, el("a", { href: `#agent/${encodeURIComponent(a.agent)}` }, a.agent)),
    el("td", {}, a.display_name || ""),
    el("td", {}, liveBadge(a)),
    el("td", { class: "num", "data-field": "rooms" }, a.joined_rooms.length),
    el("td", { class: "num", "data-field": "encrypted" }, a.encrypted_rooms.length),
    el("td", { class: "num", "data-field": "inbox_depth" }, a.inbox_depth),
    el("td", { class: "num", "data-field": "queued" }, a.queued_messages),
    el("td", { "data-field": "typing" }, a.typing_rooms.length ? badge(`typing in ${a.typing_rooms.length}`, "live") : ""),
  );
}

/** The agents view; answers a function that stops its refreshing. */
export function showAgents(root) {
  const search = el("input", {
    id: "agent-search",
    type: "search",
    placeholder: "Search by name prefix (e.g. planner-)",
    autocomplete: "off",
    spellcheck: false,
  });
  const status = el("span", { class: "muted", id: "agent-status" });
  const error = el("p", { class: "error", role: "alert", id: "agent-error" });
  const body = el("tbody", { id: "agent-rows" });
  const more = el("button", { type: "button", hidden: true, id: "agent-more" }, "More");
  let next = null;
  let query = 0;

  const load = async (append = false) => {
    const mine = ++query;
    const prefix = search.value.trim();
    try {
      const page = await get(
        withQuery("bridge/v1/agents", { limit: PAGE, prefix, after: append ? next : undefined }),
      );
      if (mine !== query) return;
      error.textContent = "";
      const rows = page.agents.map(agentRow);
      if (append) body.append(...rows);
      else fill(body, rows);
      next = page.next || null;
      more.hidden = !next;
      const shown = body.children.length;
      status.textContent = `${shown}${next ? "+" : ""} agent${shown === 1 ? "" : "s"}${prefix ? ` starting with “${prefix}”` : ""}`;
    } catch (e) {
      if (mine === query) error.textContent = e.message;
    }
  };
  let typing;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => load(), 250);
  });
  more.addEventListener("click", () => load(true));

  fill(
    root,
    el(
      "div",
      { class: "panel" },
      el("h1", {}, "Agents"),
      el("div", { class: "toolbar" }, search, status),
      error,
      el(
        "table",
        { id: "agent-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", {}, "Agent"),
            el("th", {}, "Display name"),
            el("th", {}, "State"),
            el("th", { class: "num" }, "Rooms"),
            el("th", { class: "num" }, "Encrypted"),
            el("th", { class: "num" }, "Inbox depth"),
            el("th", { class: "num" }, "Queued sends"),
            el("th", {}, "Typing"),
          ),
        ),
        body,
      ),
      more,
    ),
  );
  load();
  // Refreshes the first page while nobody pages on.
  const timer = setInterval(() => {
    if (!next || body.children.length <= PAGE) load();
  }, REFRESH_MS);
  search.focus();
  return () => clearInterval(timer);
}

function itemText(item) {
  const c = item.content || {};
  if (item.encrypted) return "(encrypted: the agent cannot read it)";
  if (item.type === "m.room.message" && typeof c.body === "string") return c.body;
  if (item.type === "m.typing") return c.typing ? "is typing" : "stopped typing";
  if (item.type === "m.receipt") return `read ${c.event_id || ""}`;
  if (item.type === "m.reaction") return `reacted ${c["m.relates_to"]?.key || ""}`;
  if (item.type === "m.room.member") return `membership: ${c.membership || ""}`;
  return item.type;
}

function inboxItem(item) {
  return el(
    "li",
    { "data-cursor": item.cursor, "data-event-id": item.event_id || "" },
    el(
      "div",
      { class: "meta" },
      `${when(item.origin_server_ts)} · ${item.sender} in `,
      el("span", { class: "mono" }, item.room_id),
      ` · ${item.type}`,
      item.mentioned ? [" ", badge("mentions it", "live")] : null,
    ),
    el("div", { class: "body" }, itemText(item)),
  );
}

/** One agent: state, rooms, and its inbox as it arrives; answers a function that stops it. */
export function showAgent(root, slug) {
  const error = el("p", { class: "error", role: "alert", id: "agent-detail-error" });
  const facts = el("dl", { id: "agent-facts" });
  const rooms = el("ul", { id: "agent-rooms" });
  const streamState = el("span", { class: "muted", id: "inbox-state" }, "connecting…");
  const items = el("ul", { class: "inbox", id: "agent-inbox" });
  const empty = el("p", { class: "muted", id: "inbox-empty" }, "Nothing yet: items appear here as they arrive.");

  const fact = (label, value, field) => [el("dt", {}, label), el("dd", { "data-field": field }, value)];
  const refresh = async () => {
    try {
      const a = await get(`bridge/v1/agents/${encodeURIComponent(slug)}`);
      error.textContent = "";
      const encrypted = new Set(a.encrypted_rooms);
      fill(
        facts,
        fact("User", el("span", { class: "mono" }, a.user_id), "user_id"),
        fact("Display name", a.display_name || "—", "display_name"),
        fact("State", [liveBadge(a), a.registered ? "" : " (not registered yet)"], "live"),
        fact("Inbox depth", num(a.inbox_depth), "inbox_depth"),
        fact("Queued sends", num(a.queued_messages), "queued"),
        fact("Typing in", a.typing_rooms.length ? a.typing_rooms.join(", ") : "—", "typing"),
      );
      fill(
        rooms,
        a.joined_rooms.length
          ? a.joined_rooms.map((r) =>
              el("li", { "data-room": r }, el("span", { class: "mono" }, r), encrypted.has(r) ? [" ", badge("encrypted", "enc")] : null),
            )
          : el("li", { class: "muted" }, "In no room."),
      );
    } catch (e) {
      error.textContent = e.message;
    }
  };

  fill(
    root,
    el(
      "div",
      { class: "panel" },
      el("p", {}, el("a", { href: "#agents" }, "← Agents")),
      el("h1", { id: "agent-name" }, slug),
      error,
      facts,
    ),
    el("div", { class: "panel" }, el("h2", {}, "Rooms"), rooms),
    el(
      "div",
      { class: "panel" },
      el("h2", {}, "Inbox, live ", streamState),
      empty,
      items,
    ),
  );
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  const stream = follow(`bridge/v1/agents/${encodeURIComponent(slug)}/events?since=latest`, {
    onEvent(event, data) {
      if (event === "gap") {
        items.prepend(el("li", { class: "muted" }, "Retention removed items before they were shown."));
        return;
      }
      if (event !== "event") return;
      empty.hidden = true;
      items.prepend(inboxItem(data));
      while (items.children.length > 200) items.lastChild.remove();
      refresh();
    },
    onState(state, detail) {
      streamState.textContent =
        state === "open" ? "(following)" : state === "refused" ? `(refused: ${detail.message})` : "(reconnecting…)";
      streamState.dataset.state = state;
    },
  });
  return () => {
    clearInterval(timer);
    stream.stop();
  };
}
