"""`words`: word statistics of a text, in Python.

Input: ``text`` (a string) or ``from`` (a reference ``"node/json/pointer"``
to a string in a dependency's output), and ``top`` (how many of the most
frequent words to list, default 3). For "The flow and the Flow: a flow
orchestrator" the output is::

    {"words": 8, "distinct": 5, "characters": 42, "longest": "orchestrator",
     "top": [["flow", 3], ["the", 2], ["a", 1]]}

Words are runs of letters, digits and apostrophes, compared in lower case;
ties in ``top`` are broken alphabetically.
"""

import re
from collections import Counter

import flow_plugin as flow

WORD = re.compile(r"[\w']+")


@flow.action(name="words", version="0.1.0", description="Word statistics of a text")
def words(ctx: flow.Context, request: flow.Request):
    params = request.input or {}
    unknown = set(params) - {"text", "from", "top"}
    if unknown:
        raise flow.Fatal(f"unknown input field(s): {', '.join(sorted(unknown))}; expected text, from, top")
    if ("text" in params) == ("from" in params):
        raise flow.Fatal("give the text with exactly one of `text` and `from`")
    text = params["text"] if "text" in params else request.deps.resolve(params["from"])
    if not isinstance(text, str):
        raise flow.Fatal(f"the text must be a string, not {type(text).__name__}")
    top = params.get("top", 3)
    if not isinstance(top, int) or top < 0:
        raise flow.Fatal("`top` must be a non-negative integer")

    found = WORD.findall(text.lower())
    counts = Counter(found)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    flow.debug(f"{len(found)} words in {len(text)} characters")
    return {
        "words": len(found),
        "distinct": len(counts),
        "characters": len(text),
        "longest": max(found, key=len, default=None),
        "top": [[word, count] for word, count in ranked[:top]],
    }
