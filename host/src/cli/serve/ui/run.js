// A run's page: its graph coloured by node state, a timeline of its nodes,
// a panel with the chosen node's input, output, error, attempts and logs,
// and buttons to cancel, resume and retry. Follows the run's events, so
// the page changes as the run goes on, without reloading.

import { api, follow } from "./api.js";
import { badge, count, duration, fill, go, h, json, link, live, state, title, when } from "./dom.js";
import { graph } from "./graph.js";
import { VirtualList } from "./list.js";

const PAGE = 10000;
const ENDED = ["succeeded", "failed", "cancelled", "interrupted"];
const NODE_STATES = ["pending", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"];

export async function page(main, [id], signal) {
  title(`Run ${id}`);
  // Events are followed from before the state is read, and those that
  // come in between are applied to it once read: nothing is missed.
  if (id.length !== 26) id = (await api(`/api/v1/runs/${encodeURIComponent(id)}/nodes?limit=1`, { signal })).run.run_id;
  const early = [];
  let apply = null;
  let gap = null;
  await follow({
    run: id,
    signal,
    onEvent: (kind, event) => (apply ? apply(kind, event) : early.push([kind, event])),
    onGap: () => gap?.(),
    onState: live,
  });
  let { run, nodes, levels } = await load(id, signal);
  const byId = new Map(nodes.map((node, index) => [node.id, index]));

  const header = h("div", {});
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Run actions" });
  const notice = h("p", { class: "notice", role: "status", "aria-live": "polite" });
  const panel = h("aside", { class: "panel side node-panel", "aria-labelledby": "node-title", tabindex: "-1" },
    h("h2", { id: "node-title" }, "Node"), h("p", { class: "muted" }, "Choose a node in the graph or the timeline to see its input, output, error, attempts and logs."));
  let chosen = -1;

  // The timeline: one row per node shown, its bar placed in the run's span.
  const filter = { status: "", text: "", level: null };
  let shown = nodes.map((_, index) => index);
  const span = () => {
    const start = Date.parse(run.created_at);
    const end = run.finished_at ? Date.parse(run.finished_at) : Date.now();
    return [start, Math.max(end, start + 1)];
  };
  const timeline = new VirtualList({
    label: "Nodes and their timeline",
    rowHeight: 30,
    height: 440,
    render: (row) => {
      const node = nodes[shown[row]];
      const s = state(node.status);
      const [t0, t1] = span();
      const bar = h("span", { class: "track", "aria-hidden": "true" });
      if (node.started_at && !node.reused_from) {
        const start = Date.parse(node.started_at);
        const end = node.elapsed_ms !== null && node.elapsed_ms !== undefined ? start + node.elapsed_ms : node.status === "running" || node.status === "retrying" ? Date.now() : start;
        const piece = h("span", { class: `bar s-${node.status}` });
        const width = Math.max(0.6, Math.min(100, (100 * (end - start)) / (t1 - t0)));
        piece.style.left = `${Math.max(0, Math.min(100 - width, (100 * (start - t0)) / (t1 - t0)))}%`;
        piece.style.width = `${width}%`;
        bar.append(piece);
      }
      return [
        h("span", { class: `badge s-${node.status}` }, h("span", { "aria-hidden": "true" }, s.icon), ` ${s.label}`),
        h("span", { class: "id mono", title: node.id }, node.id),
        h("span", { class: "num" }, node.reused_from ? "kept" : node.attempts > 1 ? `${node.attempts} attempts` : node.attempts === 1 ? "1 attempt" : ""),
        h("span", { class: "num" }, node.reused_from ? "–" : duration(node.elapsed_ms)),
        bar,
      ];
    },
    activate: (row) => choose(shown[row]),
  });
  const matches = (node) => (!filter.status || node.status === filter.status)
    && (!filter.text || node.id.includes(filter.text))
    && (filter.level === null || node.level === filter.level);
  const shownCount = h("span", { class: "muted", "aria-live": "polite" });
  const refilter = () => {
    shown = [];
    nodes.forEach((node, index) => { if (matches(node)) shown.push(index); });
    timeline.setCount(shown.length);
    shownCount.textContent = `${count(shown.length)} of ${count(nodes.length)} nodes${filter.level !== null ? ` (level ${filter.level})` : ""}`;
  };
  const levelClear = h("button", { type: "button", hidden: true, onclick: () => { filter.level = null; levelClear.hidden = true; refilter(); } }, "All levels");
  const tools = h("div", { class: "filters" },
    h("div", { class: "field inline" }, h("label", { for: "n-status" }, "Status"),
      h("select", { id: "n-status", onchange: (e) => { filter.status = e.target.value; refilter(); } },
        h("option", { value: "" }, "any"), NODE_STATES.map((s) => h("option", { value: s }, s)))),
    h("div", { class: "field inline" }, h("label", { for: "n-find" }, "Node id contains"),
      h("input", { id: "n-find", type: "search", oninput: (e) => { filter.text = e.target.value; refilter(); } })),
    levelClear, shownCount);

  let view = null;
  const graphBox = h("div", {});
  const drawGraph = () => {
    view = graph(nodes, {
      levels,
      select: (index, level) => {
        if (level !== undefined) {
          filter.level = level;
          levelClear.hidden = false;
          refilter();
          timeline.el.focus();
          return;
        }
        choose(index);
      },
    });
    fill(graphBox, view.el);
  };

  const drawHeader = () => {
    title(`Run ${run.run_id} (${run.status})`);
    const stem = run.workflow_path.split("/").pop().replace(/\.toml$/, "");
    const elapsed = (run.finished_at ? Date.parse(run.finished_at) : Date.now()) - Date.parse(run.created_at);
    fill(header,
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, link("/runs", "Runs"), " / ", run.run_id),
      h("h1", {}, h("span", { class: "mono" }, run.run_id), " ", badge(run.status)),
      h("dl", { class: "facts" },
        fact("Workflow", link(`/workflows/${encodeURIComponent(stem)}`, run.workflow_id)),
        fact("Started", when(run.created_at)),
        fact(run.finished_at ? "Took" : "Running for", duration(elapsed)),
        fact("Nodes", `${count(run.nodes)} (${count(run.failed_nodes)} failed)`),
        run.resumes ? fact("Resumed", `${run.resumes} time(s)`) : null,
        run.parent ? fact("Part of", link(`/runs/${run.parent.run_id}`, `${run.parent.run_id} (node ${run.parent.node_id})`)) : null,
        run.scheduled_for ? fact("Scheduled for", when(run.scheduled_for)) : null),
      run.error ? h("p", { class: "error" }, run.error) : null);
    const ended = ENDED.includes(run.status);
    fill(actions,
      run.status === "running" ? button("Cancel run", "danger", async () => {
        await api(`/api/v1/runs/${id}/cancel`, { method: "POST" });
        return "Cancelling: running attempts stop, the run ends as cancelled.";
      }) : null,
      ended && run.status !== "succeeded" ? button("Resume", "", async () => {
        await api(`/api/v1/runs/${id}/resume`, { method: "POST", body: {} });
        await reload();
        return "Resumed: finished nodes are kept, the rest run.";
      }) : null,
      ended && run.status !== "succeeded" ? button("Retry failed nodes", "", async () => {
        const started = await api(`/api/v1/runs/${id}/retry`, { method: "POST", body: {} });
        go(`/runs/${started.run_id}`);
      }) : null);
  };

  const button = (text, kind, act) => h("button", {
    type: "button",
    class: kind,
    onclick: async (event) => {
      const el = event.currentTarget;
      el.disabled = true;
      notice.className = "notice";
      try {
        const said = await act();
        if (said) notice.textContent = said;
      } catch (error) {
        notice.className = "notice error";
        notice.textContent = error.message;
      } finally {
        el.disabled = false;
      }
    },
  }, text);

  // The chosen node, read in full.
  let reading = null;
  const choose = async (index) => {
    if (index === undefined || index < 0) return;
    chosen = index;
    view?.choose(index);
    const node = nodes[index];
    reading?.abort();
    reading = new AbortController();
    try {
      const detail = await api(`/api/v1/runs/${id}/nodes/${encodeURIComponent(node.id)}`, { signal: reading.signal });
      drawPanel(detail);
    } catch (error) {
      if (error.name !== "AbortError") fill(panel, h("h2", { id: "node-title" }, node.id), h("p", { class: "error" }, error.message));
    }
  };
  const drawPanel = (node) => {
    const attempts = node.attempt_records || [];
    const logs = attempts.flatMap((a) => a.logs.map((line) => ({ attempt: a.number, ...line })));
    const ended = ENDED.includes(run.status);
    fill(panel,
      h("h2", { id: "node-title" }, h("span", { class: "mono" }, node.id), " ", badge(node.status)),
      h("dl", { class: "facts" },
        fact("Action", node.action),
        fact("After", node.depends_on?.length ? node.depends_on.join(", ") : "nothing"),
        fact("Attempts", String(node.attempts)),
        fact("Took", duration(node.elapsed_ms)),
        node.fuel_used !== null ? fact("Fuel", count(node.fuel_used)) : null,
        node.skipped_because ? fact("Skipped", `because ${node.skipped_because}`) : node.skipped_by_condition ? fact("Skipped", "its condition was false") : null,
        node.child_run ? fact("Sub-workflow run", link(`/runs/${node.child_run}`, node.child_run)) : null,
        node.reused_from ? fact("Output from", link(`/runs/${node.reused_from}`, node.reused_from)) : null),
      ended ? h("div", { class: "actions" }, button("Retry from this node", "", async () => {
        const started = await api(`/api/v1/runs/${id}/retry`, { method: "POST", body: { from: [node.id] } });
        go(`/runs/${started.run_id}`);
      })) : null,
      node.error ? [h("h3", {}, "Error"), h("p", { class: "error" }, h("strong", {}, node.error.kind), ": ", node.error.message)] : null,
      h("h3", {}, "Input ", h("span", { class: "muted small" }, "(as the workflow writes it)")),
      node.input !== null && node.input !== undefined ? json(node.input) : h("p", { class: "muted" }, "–"),
      h("h3", {}, "Output"),
      node.output !== null && node.output !== undefined ? json(node.output) : h("p", { class: "muted" }, "none yet"),
      attempts.length ? [h("h3", {}, "Attempts"), attemptTable(attempts)] : null,
      node.elements?.length ? [h("h3", {}, `Elements (${count(node.elements.length)})`),
        h("ul", { class: "plain" }, node.elements.slice(0, 200).map((e) => h("li", {}, badge(e.status), " ", e.id, e.error ? ` · ${e.error.message}` : "")))] : null,
      h("h3", {}, "Logs"),
      logs.length
        ? h("ol", { class: "logs", tabindex: "0", "aria-label": "Logs" }, logs.map((line) => h("li", { class: `log-${line.kind}` }, h("span", { class: "muted" }, `#${line.attempt} ${line.kind} `), line.text)))
        : h("p", { class: "muted" }, "No lines."));
  };

  // Changes from events, drawn once per frame.
  const dirty = new Set();
  let frame = 0;
  const changed = (index) => {
    dirty.add(index);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      for (const index of dirty) view?.update(index);
      if (filter.status) refilter();
      else timeline.redraw();
      if (dirty.has(chosen)) choose(chosen);
      dirty.clear();
    });
  };
  const reload = async () => {
    ({ run, nodes, levels } = await load(id, signal));
    nodes.forEach((node, index) => byId.set(node.id, index));
    drawHeader();
    drawGraph();
    refilter();
    if (chosen >= 0) choose(chosen);
  };
  const onEvent = (kind, event) => {
    if (kind === "run_finished" || kind === "run_started") {
      reload().catch(() => {});
      return;
    }
    const index = byId.get(event.node);
    if (index === undefined) return;
    const node = nodes[index];
    if (kind === "attempt_started") {
      node.status = "running";
      node.attempts = event.attempt;
      node.started_at ||= new Date().toISOString();
    } else if (kind === "retry_scheduled") {
      node.status = "retrying";
    } else if (kind === "node_finished") {
      Object.assign(node, { status: event.status, reason: event.reason, attempts: event.attempts, elapsed_ms: event.elapsed_ms, error: event.error?.message ?? null });
    } else return;
    changed(index);
  };

  drawHeader();
  drawGraph();
  fill(main,
    header, actions, notice,
    h("div", { class: "columns" },
      h("div", { class: "grow" },
        h("section", { class: "panel", "aria-labelledby": "g-title" }, h("h2", { id: "g-title" }, "Graph"), legend(), graphBox),
        h("section", { class: "panel", "aria-labelledby": "t-title" }, h("h2", { id: "t-title" }, "Timeline"), tools, timeline.el)),
      panel));
  refilter();

  // While it runs, its duration and running bars grow.
  const tick = setInterval(() => {
    if (run.status !== "running") return;
    const took = header.querySelector(".facts dd:nth-of-type(3)");
    if (took) took.textContent = duration(Date.now() - Date.parse(run.created_at));
    timeline.redraw();
  }, 1000);
  signal.addEventListener("abort", () => clearInterval(tick));
  gap = () => reload().catch(() => {});
  apply = onEvent;
  for (const [kind, event] of early) onEvent(kind, event);
}

/** The run's header and every node's state, a page at a time. */
async function load(id, signal) {
  let first = await api(`/api/v1/runs/${encodeURIComponent(id)}/nodes?limit=${PAGE}`, { signal });
  const nodes = first.nodes;
  while (nodes.length < first.total) {
    const next = await api(`/api/v1/runs/${first.run.run_id}/nodes?limit=${PAGE}&offset=${nodes.length}`, { signal });
    if (!next.nodes.length) break;
    nodes.push(...next.nodes);
  }
  return { run: first.run, nodes, levels: first.levels };
}

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}

function attemptTable(attempts) {
  const t0 = Date.parse(attempts[0].started_at);
  const end = Math.max(...attempts.map((a) => Date.parse(a.started_at) + (a.elapsed_ms || 0)), t0 + 1);
  return h("table", { class: "table small" },
    h("caption", { class: "sr-only" }, "Attempts"),
    h("thead", {}, h("tr", {}, ["#", "Started", "Took", "Result", "When"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, attempts.map((a) => {
      const track = h("span", { class: "track", "aria-hidden": "true" });
      const bar = h("span", { class: `bar ${a.error ? "s-failed" : a.elapsed_ms === null ? "s-running" : "s-succeeded"}` });
      bar.style.left = `${(100 * (Date.parse(a.started_at) - t0)) / (end - t0)}%`;
      bar.style.width = `${Math.max(1, (100 * (a.elapsed_ms || 0)) / (end - t0))}%`;
      track.append(bar);
      return h("tr", {},
        h("td", {}, String(a.number)),
        h("td", {}, when(a.started_at)),
        h("td", { class: "num" }, duration(a.elapsed_ms)),
        h("td", {}, a.error ? h("span", { class: "bad" }, `✗ ${a.error.kind}: ${a.error.message}`) : a.elapsed_ms === null ? "▶ running" : "✓ ok",
          a.retry_delay_ms ? h("span", { class: "muted" }, ` · retried after ${duration(a.retry_delay_ms)}`) : null),
        h("td", { class: "gantt" }, track));
    })));
}

function legend() {
  return h("ul", { class: "legend", "aria-label": "Node states" },
    NODE_STATES.map((s) => h("li", {}, badge(s))));
}
