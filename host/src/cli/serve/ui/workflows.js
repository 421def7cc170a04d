// The workflows page (every file of the server's directory) and a
// workflow's page (its graph, a form to start a run, its latest runs).

import { api } from "./api.js";
import { badge, count, fill, go, h, link, title, when } from "./dom.js";
import { graph } from "./graph.js";

export async function list(main, _params, signal) {
  title("Workflows");
  const workflows = await api("/api/v1/workflows", { signal });
  const rows = workflows.map((wf) => h("tr", {},
    h("th", { scope: "row" }, link(`/workflows/${encodeURIComponent(wf.name)}`, wf.name)),
    h("td", {}, wf.id || h("span", { class: "muted" }, "–")),
    h("td", { class: "num" }, wf.nodes === null ? "–" : count(wf.nodes)),
    h("td", {}, wf.params.length ? wf.params.map((p) => p.name).join(", ") : h("span", { class: "muted" }, "none")),
    h("td", {}, wf.schedule ? schedule(wf.schedule) : h("span", { class: "muted" }, "none")),
    h("td", {}, wf.valid ? h("span", { class: "badge s-succeeded" }, "✓ valid") : h("span", { class: "badge s-failed" }, `✗ ${wf.errors?.errors?.length || 1} error(s)`))));
  fill(main,
    h("h1", {}, "Workflows"),
    workflows.length
      ? h("table", { class: "table" },
        h("caption", { class: "sr-only" }, "Workflow files of the server's directory"),
        h("thead", {}, h("tr", {}, ["Name", "Workflow id", "Nodes", "Parameters", "Schedule", "File"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted" }, "The server's workflows directory has no .toml files (flow serve --workflows DIR)."));
}

function schedule(s) {
  return h("span", {}, h("code", {}, s.cron), ` (${s.timezone}) · next `, when(s.next_fire));
}

export async function detail(main, [name], signal) {
  title(name);
  const wf = await api(`/api/v1/workflows/${encodeURIComponent(name)}`, { signal });
  const parts = [
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, link("/workflows", "Workflows"), " / ", name),
    h("h1", {}, wf.id || name, " ", h("span", { class: "muted small" }, wf.file)),
  ];
  if (!wf.valid) {
    parts.push(h("section", { class: "panel" }, h("h2", {}, "This file is not a valid workflow"),
      h("ul", { class: "errors" }, (wf.errors?.errors || []).map((e) => h("li", {},
        e.line ? `line ${e.line}:${e.column}: ` : "", e.message, e.help ? h("div", { class: "muted" }, `help: ${e.help}`) : null)))));
    fill(main, parts);
    return;
  }
  if (wf.schedule) {
    parts.push(h("p", {}, "Runs on the schedule ", h("code", {}, wf.schedule.cron), ` in ${wf.schedule.timezone} (overlap: ${wf.schedule.overlap}); last `, when(wf.schedule.last_fire), ", next ", when(wf.schedule.next_fire), "."));
  }
  const positions = new Map(wf.graph.map((node, index) => [node.id, index]));
  const nodes = wf.graph.map((node) => ({ ...node, depends_on: node.depends_on.map((dep) => positions.get(dep)).filter((i) => i !== undefined) }));
  const chosen = h("p", { class: "muted", "aria-live": "polite" }, "Choose a node to see its action.");
  const view = graph(nodes, {
    select: (index) => {
      view.choose(index);
      const node = nodes[index];
      fill(chosen, h("strong", {}, node.id), ` runs ${node.action}`,
        node.depends_on.length ? `, after ${node.depends_on.map((i) => nodes[i].id).join(", ")}` : ", first",
        node.map ? "; once per element of a list" : "", node.conditional ? "; only when its condition holds" : "", ".");
    },
  });
  const recent = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  parts.push(
    h("div", { class: "columns" },
      h("section", { class: "panel grow", "aria-labelledby": "graph-title" }, h("h2", { id: "graph-title" }, `Graph · ${count(nodes.length)} nodes`), view.el, chosen),
      h("section", { class: "panel side", "aria-labelledby": "start-title" }, h("h2", { id: "start-title" }, "Start a run"), form(name, wf.params))),
    h("section", { class: "panel", "aria-labelledby": "recent-title" }, h("h2", { id: "recent-title" }, "Latest runs"), recent));
  fill(main, parts);
  const page = await api(`/api/v1/runs?workflow=${encodeURIComponent(wf.id)}&limit=10`, { signal });
  fill(recent, page.runs.length
    ? h("ul", { class: "plain" }, page.runs.map((r) => h("li", {}, badge(r.status), " ", link(`/runs/${r.run_id}`, r.run_id), " · ", when(r.created_at))))
    : h("p", { class: "muted" }, "No runs yet."));
}

/** A field for each parameter, typed; submitting starts a run. */
function form(name, params) {
  // One key per form shown: a double submit starts one run.
  let key = newKey();
  const message = h("p", { class: "error", role: "alert", hidden: true });
  const fields = params.map((p) => {
    const id = `param-${p.name}`;
    let input;
    if (p.type === "boolean") {
      input = h("input", { id, type: "checkbox", name: p.name, checked: p.default === true });
    } else if (p.type === "array" || p.type === "object") {
      input = h("textarea", { id, name: p.name, rows: 3, spellcheck: "false", placeholder: p.type === "array" ? "[ ]" : "{ }" });
      if (p.default !== null && p.default !== undefined) input.value = JSON.stringify(p.default);
    } else {
      input = h("input", { id, name: p.name, type: p.type === "string" ? "text" : "number", step: p.type === "integer" ? "1" : "any" });
      if (p.default !== null && p.default !== undefined) input.value = p.default;
    }
    if (p.default === null || p.default === undefined) input.required = p.type !== "boolean";
    return h("div", { class: "field" },
      h("label", { for: id }, p.name, " ", h("span", { class: "muted" }, p.type), input.required ? h("span", { class: "req" }, " (required)") : null),
      p.description ? h("div", { class: "muted small", id: `${id}-help` }, p.description) : null,
      input);
  });
  const button = h("button", { class: "primary", type: "submit" }, "Start run");
  const read = (p, input) => {
    if (p.type === "boolean") return input.checked;
    if (input.value === "") return undefined;
    if (p.type === "integer" || p.type === "number") return Number(input.value);
    if (p.type === "array" || p.type === "object") {
      try {
        return JSON.parse(input.value);
      } catch {
        throw new Error(`${p.name}: not JSON (${p.type === "array" ? "[1, 2]" : "{\"a\": 1}"} is)`);
      }
    }
    return input.value;
  };
  const el = h("form", {
    class: "start",
    "aria-label": `Start a run of ${name}`,
    onsubmit: async (event) => {
      event.preventDefault();
      message.hidden = true;
      button.disabled = true;
      try {
        const values = {};
        params.forEach((p, at) => {
          const value = read(p, fields[at].querySelector("input, textarea"));
          if (value !== undefined) values[p.name] = value;
        });
        const started = await api(`/api/v1/workflows/${encodeURIComponent(name)}/runs`, {
          method: "POST",
          body: { params: values },
          extraHeaders: { "Idempotency-Key": key },
        });
        key = newKey();
        go(`/runs/${started.run_id}`);
      } catch (error) {
        message.textContent = error.message;
        message.hidden = false;
      } finally {
        button.disabled = false;
      }
    },
  }, params.length ? fields : h("p", { class: "muted" }, "This workflow has no parameters."), message, h("div", { class: "actions" }, button));
  return el;
}

/** A random idempotency key (crypto.randomUUID needs a secure context). */
function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}
