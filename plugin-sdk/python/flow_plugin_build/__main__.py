"""``python -m flow_plugin_build``: the same as ``flow-plugin-build``."""

import sys

from flow_plugin_build import main

sys.exit(main())
