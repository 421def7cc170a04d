"""Test plugin ``fetch-py``: reaches what its node is granted, in Python.

Input ``mode``: ``get`` (the default) GETs ``url`` with flow_plugin.http and
returns the status and the body's text; ``env`` returns the environment;
``read`` returns the text of the file ``path``; ``write`` writes ``text`` to
``path``; ``many`` GETs every URL of ``urls`` with ``in_flight`` at once
(flow_plugin.http.send_all) and returns, in order, each body's text or the
error.
"""

import os

import flow_plugin as flow
from flow_plugin import http


@flow.action(name="fetch-py", description="Reaches what its node is granted, in Python, for tests")
def fetch(ctx: flow.Context, request: flow.Request):
    mode = request.input.get("mode", "get")
    if mode == "env":
        return {"vars": dict(os.environ)}
    if mode == "read":
        with open(request.input["path"]) as file:
            return {"text": file.read()}
    if mode == "write":
        with open(request.input["path"], "w") as file:
            file.write(request.input["text"])
        return {}
    if mode == "many":
        results = http.send_all([{"url": url} for url in request.input["urls"]], request.input["in_flight"])
        return {
            "results": [
                {"body": r.text()} if isinstance(r, http.Response) else {"error": str(r)} for r in results
            ]
        }
    response = http.get(request.input["url"])
    return {"status": response.status, "body": response.text()}
