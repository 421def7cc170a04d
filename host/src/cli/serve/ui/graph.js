// A workflow's graph: nodes in columns by dependency level, edges from each
// node to those that depend on it. Up to MAX_DRAWN nodes are drawn; a
// larger graph collapses to one row per level with its nodes counted by
// state (the run page lists the nodes themselves).

import { h, state, count } from "./dom.js";
import { VirtualList } from "./list.js";

export const MAX_DRAWN = 300;

const W = 150;
const H = 36;
const COL = 40;
const ROW = 12;
const PAD = 14;

/**
 * Draws `nodes` ({id, level, depends_on: [positions], status?, map?,
 * conditional?}) into a new element; `select(index)` is called when a node
 * is chosen. Returns {el, update(index), focus(index)}.
 */
export function graph(nodes, { select, levels: levelCount } = {}) {
  if (nodes.length > MAX_DRAWN) return collapsed(nodes, { select, levelCount });
  return drawn(nodes, { select });
}

function drawn(nodes, { select }) {
  // Columns by level; within one, nodes near their dependencies' rows.
  const columns = [];
  for (const [index, node] of nodes.entries()) (columns[node.level] ||= []).push(index);
  const row = new Map();
  for (const column of columns.filter(Boolean)) {
    const weight = (index) => {
      const deps = nodes[index].depends_on.filter((dep) => row.has(dep));
      return deps.length ? deps.reduce((sum, dep) => sum + row.get(dep), 0) / deps.length : index;
    };
    const order = column.map((index) => [weight(index), index]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    order.forEach(([, index], at) => row.set(index, at));
  }
  const tallest = Math.max(1, ...columns.map((column) => (column ? column.length : 0)));
  const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * COL;
  const height = PAD * 2 + tallest * H + (tallest - 1) * ROW;
  const x = (index) => PAD + nodes[index].level * (W + COL);
  const y = (index) => PAD + row.get(index) * (H + ROW);

  const edges = h("g", { class: "edges", "aria-hidden": "true" });
  for (const [index, node] of nodes.entries()) {
    for (const dep of node.depends_on) {
      if (!row.has(dep)) continue;
      const x1 = x(dep) + W;
      const y1 = y(dep) + H / 2;
      const x2 = x(index);
      const y2 = y(index) + H / 2;
      const bend = (x2 - x1) / 2;
      edges.append(h("path", { d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}` }));
    }
  }
  const boxes = [];
  const group = h("g", { class: "nodes" });
  for (const [index, node] of nodes.entries()) {
    const box = h("g", {
      class: `n s-${node.status || "none"}`,
      transform: `translate(${x(index)},${y(index)})`,
      tabindex: "0",
      role: "button",
      "data-node": node.id,
      onclick: () => select?.(index),
      onkeydown: (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          select?.(index);
        }
      },
    },
    h("title", {}),
    h("rect", { width: W, height: H, rx: 7 }),
    h("text", { class: "icon", x: 12, y: H / 2 + 5, "aria-hidden": "true" }),
    h("text", { class: "label", x: 30, y: H / 2 + 4 }, short(node.id, 15) + (node.map ? " [ ]" : "") + (node.conditional ? " ?" : "")));
    boxes.push(box);
    group.append(box);
  }
  const svg = h("svg", {
    class: "graph",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "group",
    "aria-label": `Graph of ${nodes.length} nodes`,
  }, edges, group);
  const el = h("div", { class: "graph-box" }, svg);
  const update = (index) => {
    const node = nodes[index];
    const box = boxes[index];
    if (!box) return;
    const s = node.status ? state(node.status) : null;
    box.setAttribute("class", `n s-${node.status || "none"}${box.classList.contains("chosen") ? " chosen" : ""}`);
    box.querySelector(".icon").textContent = s ? s.icon : "";
    const words = `${node.id}${s ? `: ${s.label}` : ""}${node.action ? ` (${node.action})` : ""}`;
    box.querySelector("title").textContent = words;
    box.setAttribute("aria-label", words);
  };
  nodes.forEach((_, index) => update(index));
  return {
    el,
    update,
    choose(index) {
      boxes.forEach((box, at) => box.classList.toggle("chosen", at === index));
    },
  };
}

/** One row per level, each with its nodes counted by state. */
function collapsed(nodes, { select, levelCount }) {
  const levels = [];
  for (const [index, node] of nodes.entries()) (levels[node.level] ||= []).push(index);
  const tally = (members) => {
    const counts = {};
    for (const index of members || []) counts[nodes[index].status || "none"] = (counts[nodes[index].status || "none"] || 0) + 1;
    return counts;
  };
  const list = new VirtualList({
    label: "Dependency levels",
    height: 300,
    render: (level) => {
      const members = levels[level] || [];
      const counts = tally(members);
      const bar = h("span", { class: "stack", "aria-hidden": "true" });
      for (const [status, n] of Object.entries(counts)) {
        const part = h("span", { class: `part s-${status}` });
        part.style.width = `${(100 * n) / members.length}%`;
        bar.append(part);
      }
      const words = Object.entries(counts).map(([status, n]) => `${count(n)} ${state(status).icon} ${state(status).label}`).join(" · ");
      return [h("span", { class: "lvl" }, `Level ${level}`), h("span", { class: "num" }, `${count(members.length)} nodes`), bar, h("span", { class: "tally" }, words)];
    },
    activate: (level) => select?.((levels[level] || [])[0], level),
  });
  list.setCount(Math.max(levels.length, levelCount || 0));
  let pending = false;
  const el = h("div", { class: "collapsed" },
    h("p", { class: "muted" }, `${count(nodes.length)} nodes: too many to draw, shown by dependency level. Choose a level to list its nodes.`),
    list.el);
  return {
    el,
    update() {
      // Many updates a second: drawn again once per frame.
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        list.redraw();
      });
    },
    choose() {},
  };
}

function short(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
