// The runs page: every recorded run, newest first, a page at a time, with
// filters; the first page follows the server's events.

import { api, follow } from "./api.js";
import { badge, count, duration, fill, go, h, link, live, title, when } from "./dom.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"];

export async function list(main, _params, signal) {
  title("Runs");
  const query = new URLSearchParams(location.search);
  const filter = {
    workflow: query.get("workflow") || "",
    status: query.get("status") || "",
    since: query.get("since") || "",
    until: query.get("until") || "",
  };
  const cursor = query.get("cursor");
  const workflows = await api("/api/v1/workflows", { signal }).catch(() => []);
  const ids = [...new Set(workflows.filter((w) => w.id).map((w) => w.id))].sort();

  const select = (name, label, values, chosen) => h("div", { class: "field inline" },
    h("label", { for: `f-${name}` }, label),
    h("select", { id: `f-${name}`, name }, h("option", { value: "" }, "any"),
      values.map((v) => h("option", { value: v, selected: v === chosen }, v))));
  const time = (name, label) => {
    const input = h("input", { id: `f-${name}`, name, type: "datetime-local", step: "1" });
    if (filter[name]) input.value = local(filter[name]);
    return h("div", { class: "field inline" }, h("label", { for: `f-${name}` }, label), input);
  };
  const form = h("form", {
    class: "filters",
    role: "search",
    "aria-label": "Filter runs",
    onsubmit: (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const [key, value] of new FormData(form)) {
        if (!value) continue;
        next.set(key, key === "since" || key === "until" ? new Date(value).toISOString() : value);
      }
      go(`/runs${next.size ? `?${next}` : ""}`);
    },
  },
  select("workflow", "Workflow", ids, filter.workflow),
  select("status", "Status", STATUSES, filter.status),
  time("since", "Started after"),
  time("until", "Started before"),
  h("button", { type: "submit" }, "Filter"),
  (filter.workflow || filter.status || filter.since || filter.until) ? link("/runs", "Clear") : null);

  const table = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  fill(main, h("h1", {}, "Runs"), form, table);
  // The first page shows runs as they start and end: followed from before
  // it is read, so that none is missed.
  let timer = null;
  let load = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => load?.().catch(() => {}), 250);
  };
  if (!cursor) {
    await follow({
      signal,
      onEvent: (kind) => {
        if (kind === "run_started" || kind === "run_finished") soon();
      },
      onGap: soon,
      onState: live,
    });
  }

  load = async () => {
    const ask = new URLSearchParams({ limit: "50" });
    for (const [key, value] of Object.entries(filter)) if (value) ask.set(key, value);
    if (cursor) ask.set("cursor", cursor);
    const page = await api(`/api/v1/runs?${ask}`, { signal });
    draw(table, page, ask);
  };
  await load();
}

function draw(table, page, ask) {
  if (!page.runs.length) {
    fill(table, h("p", { class: "muted" }, ask.has("cursor") ? "No older runs." : "No runs match."));
    return;
  }
  const now = Date.now();
  const rows = page.runs.map((run) => h("tr", {},
    h("td", {}, badge(run.status)),
    h("th", { scope: "row" }, link(`/runs/${run.run_id}`, run.run_id, { class: "mono" })),
    h("td", {}, run.workflow_id, run.parent ? h("span", { class: "muted small" }, " (sub-workflow)") : null, run.scheduled_for ? h("span", { class: "muted small" }, " (scheduled)") : null),
    h("td", {}, when(run.created_at)),
    h("td", { class: "num" }, duration((run.finished_at ? Date.parse(run.finished_at) : now) - Date.parse(run.created_at))),
    h("td", { class: "num" }, count(run.nodes)),
    h("td", { class: "num" }, run.failed_nodes ? h("span", { class: "bad" }, count(run.failed_nodes)) : "0")));
  const older = new URLSearchParams(ask);
  older.delete("limit");
  if (page.next_cursor) older.set("cursor", page.next_cursor);
  fill(table,
    h("table", { class: "table" },
      h("caption", { class: "sr-only" }, "Runs, newest first"),
      h("thead", {}, h("tr", {}, ["Status", "Run", "Workflow", "Started", "Duration", "Nodes", "Failed"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
    h("nav", { class: "pager", "aria-label": "Pages" },
      ask.has("cursor") ? link(`/runs?${withoutCursor(ask)}`, "« Newest") : null,
      page.next_cursor ? link(`/runs?${older}`, "Older »", { rel: "next" }) : h("span", { class: "muted" }, "Last page")));
}

function withoutCursor(ask) {
  const q = new URLSearchParams(ask);
  q.delete("cursor");
  q.delete("limit");
  return q;
}

/** An RFC 3339 time as a datetime-local field's value, in local time. */
function local(text) {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return "";
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 19);
}
