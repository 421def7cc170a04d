#!/usr/bin/env node
// flow-plugin-build: builds a JavaScript action into a component of the
// `action-on-demand` world, with the WIT this package carries.
//
//   flow-plugin-build plugin.js -o plugin.wasm
//
// The plugin and the modules it imports (by relative path, or installed
// packages such as `flow-plugin`) are bundled into one module first, so
// that the component needs nothing beside it; `flow:` and `wasi:` imports
// are left to the host. A plugin that calls `fetch` reaches the network
// through `wasi:http`, as far as its node's `http` grants allow.
import { componentize } from "@bytecodealliance/componentize-js";
import { realpathSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { rolldown } from "rolldown";

/**
 * What actions are built against: `action-on-demand` (a copy of the project's
 * wit/plugin.wit, kept identical by a test) plus `wasi:cli/environment`,
 * for the helper's `env` and `secret` (wit-env/world.wit).
 */
export const WIT_ENV = join(dirname(fileURLToPath(import.meta.url)), "wit-env");

const USAGE = "usage: flow-plugin-build PLUGIN.js -o OUT.wasm";

/** Bundles `source` and what it imports into one module, at `out`; its code. */
export async function bundle(source, out) {
  const build = await rolldown({
    input: resolve(source),
    external: [/^flow:/, /^wasi:/],
    platform: "neutral",
    logLevel: "warn",
  });
  try {
    const { output } = await build.write({ file: out, format: "esm" });
    return output[0].code;
  } finally {
    await build.close();
  }
}

/**
 * The componentize-js features a plugin goes without: a plugin that calls
 * `fetch` keeps `http` (its component imports `wasi:http`, which reaches
 * what the node's `http` grants allow); no plugin handles fetch events.
 */
export function disabledFeatures(code) {
  return /\bfetch\s*\(/.test(code) ? ["fetch-event"] : ["http", "fetch-event"];
}

/** Builds the action at `source` into the component file `output`. */
export async function buildPlugin(source, output) {
  const work = await mkdtemp(join(tmpdir(), "flow-plugin-build-"));
  try {
    const bundled = join(work, "plugin.js");
    const code = await bundle(source, bundled);
    const { component } = await componentize({
      sourcePath: bundled,
      witPath: WIT_ENV,
      worldName: "action-js",
      disableFeatures: disabledFeatures(code),
    });
    await writeFile(resolve(output), component);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { output: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`error: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1 || !values.output) {
    console.error(`error: name one plugin file and the output\n${USAGE}`);
    process.exit(2);
  }
  try {
    await buildPlugin(positionals[0], values.output);
  } catch (error) {
    console.error(`error: cannot build ${positionals[0]}: ${error.message}`);
    process.exit(1);
  }
}

// Run as a command (also through npm's link in node_modules/.bin), not
// when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
