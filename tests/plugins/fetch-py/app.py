"""Test plugin ``fetch-py``: reaches what its node is granted, in Python.

Input ``mode``: ``get`` (the default) GETs ``url`` with flow_plugin.http and
returns the status and the body's text; ``env`` returns the environment;
``read`` returns the text of the file ``path``; ``write`` writes ``text`` to
``path``.
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
    response = http.get(request.input["url"])
    return {"status": response.status, "body": response.text()}
