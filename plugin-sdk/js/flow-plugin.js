// Write Flow Orchestrator actions in JavaScript.
//
// An action is a function from a request to a JSON-compatible value,
// registered with `action`; the plugin module exports what it returns:
//
//   import { action, Fatal, info } from "flow-plugin";
//
//   export const { describe, run } = action(
//     { name: "greet", description: "Says hello to `name`" },
//     (ctx, request) => {
//       if (!request.input.name) throw new Fatal("`name` must not be empty");
//       info(`greeting on attempt ${ctx.attempt}`);
//       return { message: `Hello, ${request.input.name}!` };
//     },
//   );
//
// Build it with `flow-plugin-build plugin.js -o plugin.wasm` (build.mjs;
// plugins/build does it for every plugin under plugins/). The function may
// be async. What the node is granted is reached with the global `fetch`
// (HTTP), `env(name)` (variables) and `secret(name)`.
//
// Errors: throw `Retryable` for failures that may pass (the host retries
// within the node's retry policy) and `Fatal` for those that will not. Any
// other exception fails the attempt as a fatal error naming it.

import { output as heldOutput } from "flow:plugin/dependencies@0.1.0";
import { log as hostLog } from "flow:plugin/host@0.1.0";
import { getEnvironment } from "wasi:cli/environment@0.2.12";

/** Why an attempt failed. Throw `Retryable` or `Fatal`. */
export class ActionError extends Error {
  get retryable() {
    return false;
  }
}

/** A failure that may pass: the host may run the node again. */
export class Retryable extends ActionError {
  get retryable() {
    return true;
  }
}

/** A failure that will repeat whatever happens: the node fails at once. */
export class Fatal extends ActionError {}

/** Outputs of a node's dependencies, by node id, and the errors of those
 * that failed with `continue_on_error`. Outputs the host holds (`held`,
 * the request's `dependencies`) are asked for with `fetch` when first
 * read, so one the action does not read is never copied into it. */
export class Deps {
  constructor(outputs = {}, errors = {}, held = [], fetch = heldOutput) {
    this.outputs = { ...outputs };
    this.failures = errors;
    this.held = new Set(held.filter((node) => !Object.hasOwn(this.outputs, node)));
    this.fetch = fetch;
  }

  #has(node) {
    return Object.hasOwn(this.outputs, node) || this.held.has(node);
  }

  #value(node) {
    if (this.held.has(node)) {
      const text = this.fetch(node);
      this.outputs[node] = text === undefined || text === null ? null : JSON.parse(text);
      this.held.delete(node);
    }
    return this.outputs[node];
  }

  #ids() {
    return [...new Set([...Object.keys(this.outputs), ...this.held])].sort();
  }

  /** The output of dependency `node`. */
  get(node) {
    return this.#has(node) ? this.#value(node) : undefined;
  }

  /** The error of dependency `node`, if it failed. */
  error(node) {
    return this.failures[node];
  }

  /** [id, output] pairs, in id order. */
  entries() {
    return this.#ids().map((node) => [node, this.#value(node)]);
  }

  /** Follows a reference: a dependency id, optionally followed by a JSON
   * pointer into its output ("fetch", "fetch/items/0/price"). Throws
   * `Fatal` saying what is missing. */
  resolve(reference) {
    const slash = reference.indexOf("/");
    const node = slash < 0 ? reference : reference.slice(0, slash);
    const pointer = slash < 0 ? "" : reference.slice(slash + 1);
    if (node in this.failures) {
      throw new Fatal(`\`${reference}\` refers to \`${node}\`, which failed: ${this.failures[node]}`);
    }
    if (!this.#has(node)) {
      const known = this.#ids().join(", ");
      const which = known ? `its dependencies are: ${known}` : "this node has no dependencies";
      throw new Fatal(`\`${reference}\` refers to \`${node}\`, which is not a dependency of this node; ${which}`);
    }
    let value = this.#value(node);
    for (const raw of pointer ? pointer.split("/") : []) {
      const part = raw.replaceAll("~1", "/").replaceAll("~0", "~");
      if (value !== null && typeof value === "object" && Object.hasOwn(value, part)) {
        value = value[part];
      } else {
        throw new Fatal(`\`${reference}\`: the output of \`${node}\` has nothing at \`/${pointer}\``);
      }
    }
    return value;
  }
}

/** Parses the document the host hands to `run`: `{input, deps, errors}`,
 * or `dependencies` (ids) instead of `deps` for outputs the host holds. */
export function parseRequest(text) {
  const document = JSON.parse(text);
  const deps = new Deps(document.deps ?? {}, document.errors ?? {}, document.dependencies ?? []);
  return { input: document.input ?? {}, deps };
}

/** Writes a record to the host's log at `level` ("info", "warn", ...). */
export function log(level, message) {
  hostLog(level, String(message));
}
export const trace = (message) => log("trace", message);
export const debug = (message) => log("debug", message);
export const info = (message) => log("info", message);
export const warn = (message) => log("warn", message);
export const error = (message) => log("error", message);

/** The WIT error for a thrown value. */
function actionError(thrown) {
  if (thrown instanceof Retryable) return { tag: "retryable", val: thrown.message };
  if (thrown instanceof ActionError) return { tag: "fatal", val: thrown.message };
  const name = thrown?.constructor?.name ?? "Error";
  return { tag: "fatal", val: `${name}: ${thrown?.message ?? String(thrown)}` };
}

function encode(output) {
  const text = JSON.stringify(output);
  if (text === undefined) {
    throw new Fatal("the action's output is not valid JSON (it returned undefined or a function)");
  }
  return text;
}

/**
 * Runs `fn` on the host's JSON and returns the output as JSON text; throws
 * the WIT error (`{tag, val}`) on failure.
 */
export function invoke(fn, ctx, text) {
  const fail = (thrown) => {
    throw actionError(thrown);
  };
  try {
    const output = fn(ctx, parseRequest(text));
    if (output instanceof Promise) {
      return output.then(encode).catch(fail);
    }
    return encode(output);
  } catch (thrown) {
    fail(thrown);
  }
}

/**
 * Makes `fn` the plugin's action. Export what it returns:
 * `export const { describe, run } = action({ name, description }, fn);`
 */
export function action({ name, version = "0.1.0", description }, fn) {
  return {
    describe: () => ({ name, version, description }),
    run: (ctx, text) => invoke(fn, ctx, text),
  };
}

/**
 * The environment variable `name` the node is granted (its `env` and, as
 * variables of their own names, its `secrets`), or `undefined`.
 */
export function env(name) {
  for (const [key, value] of getEnvironment()) {
    if (key === name) return value;
  }
  return undefined;
}

/**
 * The secret `name`: its value, or with `secret_mode = "placeholder"` a
 * token the host replaces by the value in headers of granted requests.
 * Throws `Fatal`, saying how to grant it, when the node is not granted it.
 */
export function secret(name) {
  const value = env(name);
  if (value === undefined) {
    throw new Fatal(`the secret ${name} is not granted to this node: add secrets = ["${name}"] to its table`);
  }
  return value;
}
