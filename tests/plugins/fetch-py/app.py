"""Test plugin ``fetch-py``: GETs ``url`` with flow_plugin.http and returns the
status and the body's text, as far as the node's grants allow."""

import flow_plugin as flow
from flow_plugin import http


@flow.action(name="fetch-py", description="Fetches a URL, in Python, for tests")
def fetch(ctx: flow.Context, request: flow.Request):
    response = http.get(request.input["url"])
    return {"status": response.status, "body": response.text()}
