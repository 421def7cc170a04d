"""``flow-plugin-build``: build a Python action into a Flow Orchestrator plugin.

    flow-plugin-build app.py -o greet.wasm

runs componentize-py with the interface this package carries (the ``action``
world of ``flow:plugin``), the action's own directory and the ``flow_plugin``
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

WIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wit")


def command(module_file: str, output: str, paths: List[str]) -> List[str]:
    """The componentize-py command line that builds ``module_file``."""
    import flow_plugin

    module_dir = os.path.dirname(os.path.abspath(module_file))
    module = os.path.splitext(os.path.basename(module_file))[0]
    helper_dir = os.path.dirname(os.path.abspath(flow_plugin.__file__))
    tool = shutil.which("componentize-py", path=os.path.dirname(sys.executable))
    tool = tool or shutil.which("componentize-py") or "componentize-py"
    args = [tool, "-d", WIT, "-w", "action", "componentize", module]
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
    args = parser.parse_args(argv)
    return subprocess.call(command(args.module, args.output, args.path))


if __name__ == "__main__":
    sys.exit(main())
