import assert from "node:assert/strict";
import { test } from "node:test";

import { Deps, Fatal, Retryable, action, env, info, invoke, parseRequest, secret } from "../flow-plugin.js";
import { variables } from "./environment-stub.mjs";
import { records } from "./host-stub.mjs";

const ctx = { workflowId: "w", runId: "r", nodeId: "n", attempt: 1 };

test("outputs the host holds are asked for when first read", () => {
  const asked = [];
  const fetch = (node) => {
    asked.push(node);
    return node === "big" ? '{"xs": [1, 2, 3]}' : undefined;
  };
  const deps = new Deps({}, {}, ["big", "gone"], fetch);
  assert.deepEqual(asked, [], "nothing asked before a read");
  assert.equal(deps.resolve("big/xs/2"), 3);
  assert.deepEqual(deps.get("big"), { xs: [1, 2, 3] });
  assert.deepEqual(asked, ["big"], "asked once");
  assert.equal(deps.get("gone"), null);
  assert.equal(deps.get("other"), undefined);
  assert.deepEqual(deps.entries(), [["big", { xs: [1, 2, 3] }], ["gone", null]]);
  assert.deepEqual(asked, ["big", "gone"]);
});

test("requests carry input, deps and errors", () => {
  const request = parseRequest('{"input": {"a": 1}, "deps": {"x": [1]}, "errors": {"y": "fatal error: no"}}');
  assert.deepEqual(request.input, { a: 1 });
  assert.deepEqual(request.deps.get("x"), [1]);
  assert.equal(request.deps.error("y"), "fatal error: no");
  assert.deepEqual(request.deps.entries(), [["x", [1]]]);
});

test("resolve follows JSON pointers and says what is missing", () => {
  const deps = new Deps({ order: { items: [{ price: 3 }], "a/b": 1 } }, { bad: "fatal error: no" });
  assert.equal(deps.resolve("order/items/0/price"), 3);
  assert.equal(deps.resolve("order/a~1b"), 1);
  assert.throws(() => deps.resolve("z"), /which is not a dependency of this node; its dependencies are: order/);
  assert.throws(() => deps.resolve("order/c"), /the output of `order` has nothing at `\/c`/);
  assert.throws(() => deps.resolve("bad"), /refers to `bad`, which failed: fatal error: no/);
});

test("errors become WIT errors", () => {
  const fails = (error) => () => invoke(() => { throw error; }, ctx, '{"input": {}}');
  assert.throws(fails(new Retryable("busy")), (e) => e.tag === "retryable" && e.val === "busy");
  assert.throws(fails(new Fatal("no")), (e) => e.tag === "fatal" && e.val === "no");
  assert.throws(fails(new TypeError("x is not a function")), (e) => e.tag === "fatal" && e.val === "TypeError: x is not a function");
  assert.throws(() => invoke(() => undefined, ctx, '{"input": {}}'), (e) => e.tag === "fatal" && /not valid JSON/.test(e.val));
});

test("async actions resolve", async () => {
  const output = await invoke(async (_, request) => ({ got: request.input.n }), ctx, '{"input": {"n": 2}}');
  assert.equal(output, '{"got":2}');
  await assert.rejects(invoke(async () => { throw new Retryable("later"); }, ctx, '{"input": {}}'), (e) => e.tag === "retryable");
});

test("action exports describe and run; log reaches the host", () => {
  const { describe, run } = action({ name: "t", description: "d" }, (c, r) => {
    info(`attempt ${c.attempt}`);
    return r.input;
  });
  assert.deepEqual(describe(), { name: "t", version: "0.1.0", description: "d" });
  assert.equal(run(ctx, '{"input": [1, 2]}'), "[1,2]");
  assert.deepEqual(records.at(-1), ["info", "attempt 1"]);
});

test("env and secret read what the node is granted", () => {
  variables.push(["REGION", "eu"], ["API_TOKEN", "t0ken"]);
  assert.equal(env("REGION"), "eu");
  assert.equal(env("MISSING"), undefined);
  assert.equal(secret("API_TOKEN"), "t0ken");
  assert.throws(() => secret("OTHER"), (e) => e instanceof Fatal && /add secrets = \["OTHER"\]/.test(e.message));
  variables.length = 0;
});
