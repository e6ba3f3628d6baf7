// The live view of traffic and errors: one stream of `GET /bridge/v1/activity` for as long
// as the console is signed in (so the recent past is there when the view opens), a summary
// each second and each error as it happens.

import { follow } from "./sse.js";
import { el, fill, when, num } from "./dom.js";

const SECONDS_KEPT = 60;
const ERRORS_KEPT = 100;

const state = {
  summaries: [],
  errors: [],
  connection: "connecting…",
  stream: null,
  redraw: null,
};

/** Starts following the activity stream (after sign-in). */
export function startActivity() {
  stopActivity();
  state.stream = follow("bridge/v1/activity", {
    onEvent(event, data) {
      if (event === "summary") {
        state.summaries.push(data);
        if (state.summaries.length > SECONDS_KEPT) state.summaries.shift();
      } else if (event === "error") {
        if (state.errors.some((e) => e.seq === data.seq)) return;
        state.errors.push(data);
        if (state.errors.length > ERRORS_KEPT) state.errors.shift();
      } else return;
      state.redraw?.();
    },
    onState(s, detail) {
      state.connection = s === "open" ? "live" : s === "refused" ? `refused: ${detail.message}` : "reconnecting…";
      state.redraw?.();
    },
  });
}

export function stopActivity() {
  state.stream?.stop();
  state.stream = null;
  state.summaries = [];
  state.errors = [];
}

const RATES = [
  ["Requests 2xx /s", (t) => t.requests["2xx"], "requests_2xx"],
  ["Requests 4xx /s", (t) => t.requests["4xx"], "requests_4xx"],
  ["Requests 5xx /s", (t) => t.requests["5xx"], "requests_5xx"],
  ["Transactions /s", (t) => t.transactions, "transactions"],
  ["Events received /s", (t) => t.events, "events"],
  ["Inbox deliveries /s", (t) => t.deliveries, "deliveries"],
  ["Homeserver errors /s", (t) => t.homeserver_errors, "homeserver_errors"],
  ["Homeserver retries /s", (t) => t.homeserver_retries, "homeserver_retries"],
];

function stat(label, value, field, total) {
  return el(
    "div",
    { class: "stat", "data-stat": field },
    el("div", { class: "label" }, label),
    el("div", { class: "value", "data-field": "value" }, value),
    total === undefined ? null : el("div", { class: "total" }, "total ", el("span", { "data-field": "total" }, num(total))),
  );
}

/** A bar per second of the last minute (the seconds not seen yet empty). */
function bars(values) {
  const padded = [...Array(Math.max(0, SECONDS_KEPT - values.length)).fill(0), ...values];
  const max = Math.max(1, ...padded);
  return el(
    "div",
    { class: "bars", "aria-hidden": "true" },
    padded.map((v) => {
      const bar = el("span", { title: num(v) });
      bar.style.height = `${Math.round((100 * v) / max)}%`;
      return bar;
    }),
  );
}

function errorRow(e) {
  return el(
    "tr",
    { "data-seq": e.seq, "data-source": e.source },
    el("td", {}, when(e.time_ms)),
    el("td", {}, e.source),
    el("td", { class: "mono" }, [e.method, e.target].filter(Boolean).join(" ")),
    el("td", { "data-field": "status" }, e.status ?? e.kind ?? ""),
    el("td", { "data-field": "errcode" }, e.errcode || ""),
    el("td", { "data-field": "agent" }, e.agent || ""),
    el("td", { class: "mono muted" }, e.request_id || ""),
  );
}

/** The view; answers a function that stops redrawing it (the stream goes on). */
export function showActivity(root) {
  const gauges = el("div", { class: "grid", id: "traffic-gauges" });
  const rates = el("div", { class: "grid", id: "traffic-rates" });
  const chart = el("div", { id: "traffic-chart" });
  const connection = el("span", { class: "muted", id: "activity-state" });
  const errors = el("tbody", { id: "error-rows" });
  const noErrors = el("p", { class: "muted", id: "no-errors" }, "No errors since the daemon started.");

  const draw = () => {
    connection.textContent = `(${state.connection})`;
    const last = state.summaries.at(-1);
    if (last) {
      const per = last.per_s || {};
      fill(
        gauges,
        stat("Agents live", last.agents_live, "agents_live"),
        stat("Streams open", last.streams_open, "streams_open"),
        stat("Outbox pending", last.outbox_pending, "outbox_pending"),
      );
      fill(
        rates,
        RATES.map(([label, pick, field]) =>
          stat(label, last.per_s ? num(pick(per)) : "…", field, pick(last.totals)),
        ),
      );
      fill(
        chart,
        el("div", { class: "label muted" }, "Events received per second, last minute"),
        bars(state.summaries.map((s) => (s.per_s ? s.per_s.events : 0))),
      );
    }
    fill(errors, [...state.errors].reverse().map(errorRow));
    noErrors.hidden = state.errors.length > 0;
  };

  fill(
    root,
    el("div", { class: "panel" }, el("h1", {}, "Traffic ", connection), gauges, el("br"), rates, chart),
    el(
      "div",
      { class: "panel" },
      el("h2", {}, "Errors (bridge answers ≥ 500, failed homeserver calls)"),
      noErrors,
      el(
        "table",
        { id: "error-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["Time", "Source", "Route / endpoint", "Status", "Errcode", "Agent", "Request id"].map((h) => el("th", {}, h)),
          ),
        ),
        errors,
      ),
    ),
  );
  state.redraw = draw;
  draw();
  return () => {
    state.redraw = null;
  };
}
