"""Tests of flow-plugin-build: the interface it carries and its command."""

import os
import unittest

import flow_plugin_build

HERE = os.path.dirname(os.path.abspath(__file__))


class FlowPluginBuildTest(unittest.TestCase):
    def test_the_wit_copy_is_the_projects(self):
        with open(os.path.join(flow_plugin_build.WIT, "plugin.wit")) as copy:
            with open(os.path.join(HERE, "..", "..", "wit", "plugin.wit")) as original:
                self.assertEqual(
                    copy.read(),
                    original.read(),
                    "copy wit/plugin.wit to plugin-sdk/python/flow_plugin_build/wit/",
                )

    def test_the_command_names_the_world_the_module_and_the_helper(self):
        args = flow_plugin_build.command("plugins/words/app.py", "out.wasm", ["extra"])
        self.assertEqual(args[1:7], ["-d", flow_plugin_build.WIT, "-w", "action", "componentize", "app"])
        paths = [args[i + 1] for i, arg in enumerate(args) if arg == "-p"]
        self.assertEqual(paths[0], os.path.abspath("plugins/words"))
        self.assertEqual(paths[1], HERE)
        self.assertEqual(paths[2], "extra")
        self.assertEqual(args[-2:], ["-o", os.path.abspath("out.wasm")])


if __name__ == "__main__":
    unittest.main()
