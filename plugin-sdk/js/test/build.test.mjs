import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { WIT_ENV, disabledFeatures } from "../build.mjs";

const here = dirname(fileURLToPath(import.meta.url));

test("the world actions are built against includes the project's action", async () => {
  const copy = await readFile(join(WIT_ENV, "deps", "plugin.wit"), "utf8");
  const original = await readFile(join(here, "..", "..", "..", "wit", "plugin.wit"), "utf8");
  assert.equal(copy, original, "copy wit/plugin.wit to plugin-sdk/js/wit-env/deps/");
});

test("only plugins that call fetch import wasi:http", () => {
  assert.deepEqual(disabledFeatures("const r = await fetch(url);"), ["fetch-event"]);
  assert.deepEqual(disabledFeatures("return prefetch;"), ["http", "fetch-event"]);
});
