// The API client: JSON requests with the bearer token when the server wants
// one, and the server-sent events stream read with fetch (EventSource cannot
// send a token).

const TOKEN_KEY = "flow.token";

/** An answer of the API that is not a success: its RFC 9457 problem. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function headers(extra) {
  const all = { Accept: "application/json", ...extra };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) all.Authorization = `Bearer ${token}`;
  return all;
}

/** Asks for a token (kept for this tab only) and resolves once given. */
let asking = null;
function askToken(message) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "token";
    dialog.setAttribute("aria-labelledby", "token-title");
    dialog.innerHTML = `<form method="dialog">
      <h2 id="token-title">This server needs a token</h2>
      <p class="muted"></p>
      <label for="token-input">Bearer token (made by <code>flow token</code>)</label>
      <input id="token-input" type="password" autocomplete="off" required>
      <div class="actions"><button class="primary" type="submit">Use token</button></div>
    </form>`;
    dialog.querySelector("p").textContent = message;
    dialog.querySelector("form").addEventListener("submit", () => {
      sessionStorage.setItem(TOKEN_KEY, dialog.querySelector("input").value.trim());
      dialog.remove();
      asking = null;
      resolve();
    });
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    document.body.append(dialog);
    dialog.showModal();
  });
  return asking;
}

/** `method path` with a JSON body; resolves to the parsed answer. */
export async function api(path, { method = "GET", body, signal, extraHeaders } = {}) {
  for (;;) {
    const init = { method, signal, headers: headers(extraHeaders) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      const problem = await response.json().catch(() => ({}));
      await askToken(problem.detail || "Give a token to go on.");
      continue;
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
}

/**
 * Follows `/api/v1/events` (for one run when `run` is given), calling
 * `onEvent(kind, data)` for each event and `onGap()` when events may have
 * been missed (a reconnect or `lagged`), until `signal` aborts. Resolves
 * once the server listens for this client (or the first try failed): a
 * state read after that misses no event.
 */
export function follow({ run, onEvent, onGap, onState, signal }) {
  let ready;
  const listening = new Promise((resolve) => { ready = resolve; });
  const url = run ? `/api/v1/events?run=${encodeURIComponent(run)}` : "/api/v1/events";
  const decoder = new TextDecoder();
  let delay = 500;
  const connect = async (first) => {
    while (!signal.aborted) {
      try {
        const response = await fetch(url, { headers: headers({ Accept: "text/event-stream" }), signal });
        if (response.status === 401) {
          await askToken("Give a token to follow the server's events.");
          continue;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState?.(true);
        ready();
        if (!first) onGap?.();
        first = false;
        delay = 500;
        const reader = response.body.getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let kind = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (!data.length) continue;
            if (kind === "lagged") {
              onGap?.();
              continue;
            }
            try {
              onEvent(kind, JSON.parse(data.join("\n")));
            } catch (error) {
              console.error("flow: an event could not be read", error);
            }
          }
        }
      } catch (error) {
        if (signal.aborted) return;
      }
      onState?.(false);
      ready();
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  };
  connect(true);
  return listening;
}
