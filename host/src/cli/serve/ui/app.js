// The dashboard's router: each path draws its page into <main>; links
// inside the dashboard change the page without loading it again.

import { failure, fill, go } from "./dom.js";
import * as workflows from "./workflows.js";
import * as runs from "./runs.js";
import * as run from "./run.js";

const routes = [
  [/^\/(?:workflows)?\/?$/, workflows.list, "workflows"],
  [/^\/workflows\/([^/]+)$/, workflows.detail, "workflows"],
  [/^\/runs\/?$/, runs.list, "runs"],
  [/^\/runs\/([^/]+)$/, run.page, "runs"],
];

let current = null;

async function show() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const main = document.getElementById("main");
  document.getElementById("live").textContent = "";
  const path = location.pathname;
  for (const [pattern, draw, section] of routes) {
    const match = pattern.exec(path);
    if (!match) continue;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    try {
      await draw(main, match.slice(1).map(decodeURIComponent), controller.signal);
    } catch (error) {
      if (!controller.signal.aborted) fill(main, failure(error));
    }
    return;
  }
  fill(main, failure(new Error(`The dashboard has no page ${path}.`)));
}

window.addEventListener("flow:navigate", () => {
  show().then(() => document.getElementById("main").focus({ preventScroll: true }));
  window.scrollTo(0, 0);
});

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || link.target) return;
  event.preventDefault();
  go(url.pathname + url.search);
});
window.addEventListener("popstate", show);
show();
