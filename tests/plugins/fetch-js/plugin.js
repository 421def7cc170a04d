// Test plugin `fetch-js`: fetches `url` with the global `fetch` and returns
// the status and the body's text, as far as the node's grants allow.

import { Fatal, action } from "../../../plugin-sdk/js/flow-plugin.js";

export const { describe, run } = action(
  { name: "fetch-js", description: "Fetches a URL, in JavaScript, for tests" },
  async (_ctx, request) => {
    let response;
    try {
      response = await fetch(request.input.url);
    } catch (error) {
      throw new Fatal(`fetch failed: ${error}`);
    }
    return { status: response.status, body: await response.text() };
  },
);
