"""``flow-plugin-build``: build a Python action into a Flow Orchestrator plugin.

    flow-plugin-build app.py -o greet.wasm

runs componentize-py with the interface this package carries (the ``action``
world of ``flow:plugin``, or ``action-http`` for an action that uses
``flow_plugin.http``), the action's own directory and the ``flow_plugin``
helper on the module path, so a plugin needs nothing but ``pip install`` of
this package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import List, Optional

import re

WIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wit")
# The `action-on-demand` world plus `wasi:http`, for actions that use
# flow_plugin.http.
WIT_HTTP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wit-http")

USES_HTTP = re.compile(r"flow_plugin\.http|from\s+flow_plugin\s+import\s+[^\n]*\bhttp\b|flow_plugin_http")


def uses_http(module_dir: str) -> bool:
    """Whether a module of the action's directory uses flow_plugin.http."""
    if not os.path.isdir(module_dir):
        return False
    for name in sorted(os.listdir(module_dir)):
        if name.endswith(".py"):
            with open(os.path.join(module_dir, name), encoding="utf-8") as source:
                if USES_HTTP.search(source.read()):
                    return True
    return False


def command(module_file: str, output: str, paths: List[str], quiet: bool = False) -> List[str]:
    """The componentize-py command line that builds ``module_file``."""
    import flow_plugin

    module_dir = os.path.dirname(os.path.abspath(module_file))
    module = os.path.splitext(os.path.basename(module_file))[0]
    helper_dir = os.path.dirname(os.path.abspath(flow_plugin.__file__))
    tool = shutil.which("componentize-py", path=os.path.dirname(sys.executable))
    tool = tool or shutil.which("componentize-py") or "componentize-py"
    wit, world = (WIT_HTTP, "action-http") if uses_http(module_dir) else (WIT, "action-on-demand")
    args = [tool, *(["--quiet"] if quiet else []), "-d", wit, "-w", world, "componentize", module]
    for path in [module_dir, helper_dir, *paths]:
        args += ["-p", path]
    return args + ["-o", os.path.abspath(output)]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flow-plugin-build",
        description="Build a Python action (a module using flow_plugin) into a plugin.",
    )
    parser.add_argument("module", help="the action's module, e.g. app.py")
    parser.add_argument("-o", "--output", required=True, help="the .wasm file to write")
    parser.add_argument(
        "-p", "--path", action="append", default=[], help="another directory of modules"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    args = parser.parse_args(argv)
    return subprocess.call(command(args.module, args.output, args.path, args.quiet))


if __name__ == "__main__":
    sys.exit(main())
