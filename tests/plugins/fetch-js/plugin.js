// Test plugin `fetch-js`: reaches what its node is granted, in JavaScript.
// Input `mode`: `get` (the default) fetches `url` with the global `fetch`
// and returns the status and the body's text; `env` returns the variable
// `REGION` and the secret `API_TOKEN` through the helper.

import { Fatal, action, env, secret } from "../../../plugin-sdk/js/flow-plugin.js";

export const { describe, run } = action(
  { name: "fetch-js", description: "Reaches what its node is granted, in JavaScript, for tests" },
  async (_ctx, request) => {
    if (request.input.mode === "env") {
      return { region: env("REGION") ?? null, token: secret("API_TOKEN") };
    }
    let response;
    try {
      response = await fetch(request.input.url);
    } catch (error) {
      throw new Fatal(`fetch failed: ${error}`);
    }
    return { status: response.status, body: await response.text() };
  },
);
