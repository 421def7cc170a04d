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

    def test_the_http_world_includes_the_projects_action(self):
        copy = os.path.join(flow_plugin_build.WIT_HTTP, "deps", "plugin.wit")
        with open(copy) as copied:
            with open(os.path.join(HERE, "..", "..", "wit", "plugin.wit")) as original:
                self.assertEqual(
                    copied.read(),
                    original.read(),
                    "copy wit/plugin.wit to plugin-sdk/python/flow_plugin_build/wit-http/deps/",
                )

    def test_actions_that_use_http_build_against_the_http_world(self):
        args = flow_plugin_build.command(
            os.path.join(HERE, "..", "..", "tests", "plugins", "fetch-py", "app.py"), "o.wasm", []
        )
        self.assertEqual(args[1:5], ["-d", flow_plugin_build.WIT_HTTP, "-w", "action-http"])

    def test_the_command_names_the_world_the_module_and_the_helper(self):
        args = flow_plugin_build.command("plugins/words/app.py", "out.wasm", ["extra"])
        self.assertEqual(args[1:7], ["-d", flow_plugin_build.WIT, "-w", "action-on-demand", "componentize", "app"])
        paths = [args[i + 1] for i, arg in enumerate(args) if arg == "-p"]
        self.assertEqual(paths[0], os.path.abspath("plugins/words"))
        self.assertEqual(paths[1], HERE)
        self.assertEqual(paths[2], "extra")
        self.assertEqual(args[-2:], ["-o", os.path.abspath("out.wasm")])


if __name__ == "__main__":
    unittest.main()
