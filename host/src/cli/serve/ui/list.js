// A list that draws only the rows in view, so that 10,000 rows or more
// scroll without freezing the page. Keyboard: arrows, Home, End, Page
// Up/Down move the active row; Enter or Space opens it.

import { h } from "./dom.js";

let lists = 0;

export class VirtualList {
  /**
   * `render(index)` makes a row's content; `activate(index)` opens it;
   * `label` names the list for screen readers.
   */
  constructor({ render, activate, label, rowHeight = 32, height = 420 }) {
    this.render = render;
    this.activate = activate;
    this.rowHeight = rowHeight;
    this.count = 0;
    this.active = -1;
    this.id = `list${++lists}`;
    this.inner = h("div", { class: "vlist-inner" });
    this.el = h("div", {
      class: "vlist",
      role: "listbox",
      tabindex: "0",
      "aria-label": label,
      onscroll: () => this.draw(),
      onkeydown: (event) => this.key(event),
    }, this.inner);
    this.height = height;
    this.drawn = new Map();
  }

  /** Shows `count` rows, drawing again those in view. */
  setCount(count) {
    this.count = count;
    this.inner.style.height = `${count * this.rowHeight}px`;
    this.el.style.height = `${Math.min(Math.max(count, 1) * this.rowHeight + 2, this.height)}px`;
    if (this.active >= count) this.active = count - 1;
    this.redraw();
  }

  /** Draws every row in view again (their data changed). */
  redraw() {
    for (const row of this.drawn.values()) row.remove();
    this.drawn.clear();
    this.draw();
  }

  /** Draws one row again if it is in view. */
  refresh(index) {
    const row = this.drawn.get(index);
    if (!row) return;
    row.remove();
    this.drawn.delete(index);
    this.draw();
  }

  draw() {
    const height = this.el.clientHeight || this.height;
    const first = Math.max(0, Math.floor(this.el.scrollTop / this.rowHeight) - 5);
    const last = Math.min(this.count, Math.ceil((this.el.scrollTop + height) / this.rowHeight) + 5);
    for (const [index, row] of this.drawn) {
      if (index < first || index >= last) {
        row.remove();
        this.drawn.delete(index);
      }
    }
    for (let index = first; index < last; index++) {
      if (this.drawn.has(index)) continue;
      const row = h("div", {
        class: `vrow${index === this.active ? " active" : ""}`,
        role: "option",
        id: `${this.id}-${index}`,
        "aria-selected": index === this.active ? "true" : "false",
        "aria-setsize": this.count,
        "aria-posinset": index + 1,
        onclick: () => {
          this.setActive(index);
          this.activate?.(index);
        },
      }, this.render(index));
      row.style.transform = `translateY(${index * this.rowHeight}px)`;
      row.style.height = `${this.rowHeight}px`;
      this.inner.append(row);
      this.drawn.set(index, row);
    }
  }

  setActive(index) {
    const before = this.active;
    this.active = index;
    this.refresh(before);
    this.refresh(index);
    if (index >= 0) this.el.setAttribute("aria-activedescendant", `${this.id}-${index}`);
  }

  /** Scrolls so that row `index` is in view. */
  reveal(index) {
    const top = index * this.rowHeight;
    const view = this.el.clientHeight;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + this.rowHeight > this.el.scrollTop + view) this.el.scrollTop = top + this.rowHeight - view;
    this.draw();
  }

  key(event) {
    const page = Math.max(1, Math.floor(this.el.clientHeight / this.rowHeight) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    let next = this.active;
    if (event.key in moves) next = Math.max(0, this.active + moves[event.key]);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = this.count - 1;
    else if ((event.key === "Enter" || event.key === " ") && this.active >= 0) {
      event.preventDefault();
      this.activate?.(this.active);
      return;
    } else return;
    event.preventDefault();
    next = Math.min(next, this.count - 1);
    if (next < 0) return;
    this.setActive(next);
    this.reveal(next);
  }
}
