// `template`: fills a text template with values, in JavaScript.
//
// Input: `template`, a string with placeholders `{{ path }}`; `data`, an
// optional object of values. A path is a dependency id or a key of `data`,
// followed by `.`-separated keys or array indices: `{{ totals.sum }}`,
// `{{ customer.name }}`, `{{ items.0 }}`. Strings are inserted as they are,
// other values as JSON. Output: `{"text": "..."}`.
//
//   [nodes.letter]
//   action = "template"
//   depends_on = ["customer", "totals"]
//   input = { template = "Dear {{ customer.name }}, you owe {{ totals.sum }}." }

import { Fatal, action, debug } from "../../plugin-sdk/js/flow-plugin.js";

const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

export function render(template, values) {
  return template.replace(PLACEHOLDER, (_, path) => {
    let value = values;
    for (const key of path.split(".")) {
      if (value === null || typeof value !== "object" || !Object.hasOwn(value, key)) {
        throw new Fatal(`the template refers to \`${path}\`, but there is nothing at \`${key}\``);
      }
      value = value[key];
    }
    return typeof value === "string" ? value : JSON.stringify(value);
  });
}

export const { describe, run } = action(
  { name: "template", version: "0.1.0", description: "Fills a text template with values" },
  (ctx, request) => {
    const { template, data = {}, ...rest } = request.input;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) {
      throw new Fatal(`unknown input field(s): ${unknown.join(", ")}; expected template, data`);
    }
    if (typeof template !== "string") {
      throw new Fatal("`template` must be a string");
    }
    const values = { ...Object.fromEntries(request.deps.entries()), ...data };
    const text = render(template, values);
    debug(`rendered ${text.length} characters`);
    return { text };
  },
);
