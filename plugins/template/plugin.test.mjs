import assert from "node:assert/strict";
import { test } from "node:test";

import { run } from "./plugin.js";

const ctx = { workflowId: "w", runId: "r", nodeId: "n", attempt: 1 };
const render = (input, deps = {}) => JSON.parse(run(ctx, JSON.stringify({ input, deps })));

test("fills placeholders from dependencies and data", () => {
  const output = render(
    { template: "Dear {{ customer.name }}, you owe {{totals.sum}} ({{ data.items.1 }}).", data: { data: { items: ["a", "b"] } } },
    { customer: { name: "Ada" }, totals: { sum: 52.75 } },
  );
  assert.deepEqual(output, { text: "Dear Ada, you owe 52.75 (b)." });
});

test("non-strings are inserted as JSON", () => {
  assert.deepEqual(render({ template: "{{ x }}", data: { x: { a: [1] } } }), { text: '{"a":[1]}' });
});

test("a missing value is a fatal error naming it", () => {
  assert.throws(() => render({ template: "{{ customer.age }}" }, { customer: {} }), (e) => e.tag === "fatal" && e.val === "the template refers to `customer.age`, but there is nothing at `age`");
  assert.throws(() => render({ template: 5 }), (e) => e.val === "`template` must be a string");
  assert.throws(() => render({ template: "", colour: 1 }), (e) => /unknown input field\(s\): colour/.test(e.val));
});
