// Issued bridge tokens (admin tokens only): the list, issuing one (its value is shown once),
// and revoking.

import { call, get } from "./api.js";
import { el, fill, when } from "./dom.js";

const SCOPES = ["read", "send", "profile", "provision", "admin"];

function tokenRow(t, reload, error) {
  const revoke = el("button", { type: "button", class: "small danger", "data-action": "revoke" }, "Revoke");
  revoke.addEventListener("click", async () => {
    if (revoke.dataset.armed !== "yes") {
      revoke.dataset.armed = "yes";
      revoke.textContent = "Confirm revoke";
      return;
    }
    revoke.disabled = true;
    try {
      await call("DELETE", `bridge/v1/tokens/${encodeURIComponent(t.id)}`);
      reload();
    } catch (e) {
      error.textContent = e.message;
      revoke.disabled = false;
    }
  });
  return el(
    "tr",
    { "data-token-id": t.id },
    el("td", { class: "mono" }, t.id),
    el("td", {}, t.name),
    el("td", {}, t.scopes.join(", ")),
    el("td", { class: "mono" }, t.agents.join(", ") || "—"),
    el("td", {}, t.rate_per_s ?? "default"),
    el("td", {}, when(t.created_at)),
    el("td", {}, t.expires_at ? [when(t.expires_at), t.expired ? " (expired)" : ""] : "never"),
    el("td", {}, revoke),
  );
}

/** The tokens view: for an admin token; a read token is told it needs one. */
export function showTokens(root, isAdmin) {
  if (!isAdmin) {
    fill(
      root,
      el(
        "div",
        { class: "panel", id: "tokens-refused" },
        el("h1", {}, "Tokens"),
        el("p", {}, "Issued tokens are managed with an admin token; this one may only read."),
      ),
    );
    return () => {};
  }
  const error = el("p", { class: "error", role: "alert", id: "token-error" });
  const rows = el("tbody", { id: "token-rows" });
  const issued = el("div", { id: "token-issued" });

  const reload = async () => {
    try {
      const list = await get("bridge/v1/tokens");
      fill(rows, list.tokens.map((t) => tokenRow(t, reload, error)));
      if (!list.tokens.length) fill(rows, el("tr", {}, el("td", { class: "muted" }, "No issued tokens.")));
    } catch (e) {
      error.textContent = e.message;
    }
  };

  const name = el("input", { id: "token-name", placeholder: "name (who holds it)", required: true });
  const agents = el("input", { id: "token-agents", placeholder: "agents: planner-*, coder-1 or *" });
  const expires = el("input", { id: "token-expires", type: "number", min: 1, placeholder: "expires in (s)" });
  const boxes = SCOPES.map((s) => el("label", {}, el("input", { type: "checkbox", value: s, name: "scope" }), ` ${s}`));
  const form = el(
    "form",
    { id: "token-form" },
    name,
    agents,
    expires,
    boxes,
    el("button", { type: "submit" }, "Issue"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scopes = [...form.querySelectorAll("input[name=scope]:checked")].map((b) => b.value);
    const request = {
      name: name.value.trim(),
      scopes,
      agents: agents.value.split(",").map((a) => a.trim()).filter(Boolean),
    };
    if (expires.value) request.expires_in_s = Number(expires.value);
    try {
      const t = await call("POST", "bridge/v1/tokens", request);
      error.textContent = "";
      fill(
        issued,
        el("p", {}, `Issued ${t.id}. Its value, shown this once:`),
        el("div", { class: "secret mono", id: "token-value" }, t.token),
      );
      form.reset();
      reload();
    } catch (e) {
      error.textContent = e.message;
    }
  });

  fill(
    root,
    el(
      "div",
      { class: "panel" },
      el("h1", {}, "Tokens"),
      error,
      el(
        "table",
        { id: "token-table" },
        el(
          "thead",
          {},
          el("tr", {}, ["Id", "Name", "Scopes", "Agents", "Rate /s", "Issued", "Expires", ""].map((h) => el("th", {}, h))),
        ),
        rows,
      ),
    ),
    el("div", { class: "panel" }, el("h2", {}, "Issue a token"), form, issued),
  );
  reload();
  return () => fill(issued);
}
