// The console's shell: sign-in with a bridge token (kept in this tab's sessionStorage),
// what the token may see (tokens only for an admin token), and the views by URL hash:
// #agents, #agent/<slug>, #activity, #tokens.

import { get, keepToken, forgetToken, token, ApiError } from "./api.js";
import { showAgents, showAgent } from "./agents.js";
import { showActivity, startActivity, stopActivity } from "./activity.js";
import { showTokens } from "./tokens.js";

const $ = (id) => document.getElementById(id);
let session = null;
let leaveView = () => {};

/** What the token may do: read (required) and admin (tokens). */
async function probe() {
  await get("bridge/v1/agents?limit=1");
  try {
    await get("bridge/v1/tokens");
    return { admin: true };
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return { admin: false };
    throw e;
  }
}

function showSignIn(message = "") {
  leaveView();
  leaveView = () => {};
  stopActivity();
  session = null;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("view").hidden = true;
  $("who").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function signIn(value) {
  keepToken(value);
  try {
    const { admin } = await probe();
    session = { admin };
  } catch (e) {
    forgetToken();
    const why =
      e instanceof ApiError && e.status === 403
        ? "This token is refused: it is unknown, revoked or expired, or lacks the read scope."
        : `Cannot sign in: ${e.message}`;
    showSignIn(why);
    return;
  }
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("nav-tokens").hidden = !session.admin;
  $("who").textContent = session.admin ? "admin token" : "read token";
  $("view").hidden = false;
  startActivity();
  route();
}

function route() {
  if (!session) return;
  leaveView();
  const hash = decodeURIComponent(location.hash.slice(1));
  const [view, arg] = hash.split("/", 2);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("current", a.dataset.view === (view === "agent" ? "agents" : view || "agents"));
  }
  const root = $("view");
  if (view === "agent" && arg) leaveView = showAgent(root, arg);
  else if (view === "activity") leaveView = showActivity(root);
  else if (view === "tokens") leaveView = showTokens(root, session.admin);
  else leaveView = showAgents(root);
}

function start() {
  $("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (value) signIn(value);
  });
  $("sign-out").addEventListener("click", () => {
    forgetToken();
    showSignIn();
  });
  window.addEventListener("hashchange", route);
  const kept = token();
  if (kept) signIn(kept);
  else showSignIn();
}

start();
