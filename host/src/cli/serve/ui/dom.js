// Small helpers to build the page: elements, status badges, times.

/** An element with attributes (`on*` are listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "rect", "path", "text", "title", "line", "tspan"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Each state's symbol and words, so that none is told by colour alone. */
export const STATES = {
  pending: { icon: "○", label: "pending" },
  running: { icon: "▶", label: "running" },
  retrying: { icon: "↻", label: "retrying" },
  succeeded: { icon: "✓", label: "succeeded" },
  failed: { icon: "✗", label: "failed" },
  skipped: { icon: "⤼", label: "skipped" },
  cancelled: { icon: "⊘", label: "cancelled" },
  interrupted: { icon: "‖", label: "interrupted" },
  queued: { icon: "…", label: "queued" },
  lost: { icon: "?", label: "lost" },
};

export function state(status) {
  return STATES[status] || { icon: "•", label: status || "unknown" };
}

/** A status badge: symbol and word, coloured by state. */
export function badge(status) {
  const s = state(status);
  return h("span", { class: `badge s-${status}` }, h("span", { "aria-hidden": "true" }, s.icon), ` ${s.label}`);
}

/** Milliseconds as people read them: 850 ms, 4.2 s, 3 min 5 s, 2 h 4 min. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** An RFC 3339 time in the browser's zone, with the exact time as a tooltip. */
export function when(text) {
  if (!text) return h("span", { class: "muted" }, "–");
  const date = new Date(text);
  return h("time", { datetime: text, title: text }, date.toLocaleString());
}

export function count(n) {
  return Number(n).toLocaleString("en-US");
}

/** Replaces what `el` holds. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** A notice of what went wrong, read out by screen readers. */
export function failure(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

/** JSON, indented, in a scrollable block. */
export function json(value) {
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

/** Tells in the header whether the server's events arrive. */
export function live(on) {
  const el = document.getElementById("live");
  if (el) el.textContent = on ? "● live" : "○ reconnecting…";
}

/** Sets the window's title. */
export function title(text) {
  document.title = text ? `${text} · Flow Orchestrator` : "Flow Orchestrator";
}

/** The page's path, for links inside the dashboard. */
export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

/** Goes to `href` inside the dashboard (the router draws the page). */
export function go(href) {
  history.pushState(null, "", href);
  window.dispatchEvent(new Event("flow:navigate"));
}
