// The bridge API as the console calls it: the token from this tab's sessionStorage, sent
// as `Authorization: Bearer`; URLs relative to the page, so a proxy may mount the daemon
// under a path.

const KEY = "mosaic-as.console.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function keepToken(value) {
  sessionStorage.setItem(KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/** The URL of an API path (`bridge/v1/...`), relative to the page. */
export function url(path) {
  return new URL(path, document.baseURI);
}

/** An error answer: its status, errcode and message. */
export class ApiError extends Error {
  constructor(status, errcode, message) {
    super(`${status}${errcode ? ` ${errcode}` : ""}: ${message}`);
    this.status = status;
    this.errcode = errcode;
  }
}

/** Reads an error answer's `{errcode, error}`. */
export async function errorOf(res) {
  const body = await res.json().catch(() => ({}));
  return new ApiError(res.status, body.errcode || "", body.error || res.statusText);
}

export function headers(extra = {}) {
  return { Authorization: `Bearer ${token()}`, ...extra };
}

/** One JSON call; throws an ApiError on an error answer. */
export async function call(method, path, body) {
  const init = { method, cache: "no-store", headers: headers({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url(path), init);
  if (!res.ok) throw await errorOf(res);
  return res.status === 204 ? null : res.json();
}

export const get = (path) => call("GET", path);

/** `path?query` with the query's defined values encoded. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, v);
  }
  const q = params.toString();
  return q ? `${path}?${q}` : path;
}
