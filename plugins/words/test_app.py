"""Unit tests of the `words` plugin, run with plain Python (`make test`)."""

import unittest

import flow_plugin as flow
from app import words

CONTEXT = flow.Context("w", "r", "n", 1)


def run(input, deps=None):
    return words(CONTEXT, flow.Request(input, flow.Deps(deps or {}, {})))


class WordsTests(unittest.TestCase):
    def test_statistics(self):
        output = run({"text": "The flow and the Flow: a flow orchestrator"})
        self.assertEqual(
            output,
            {
                "words": 8,
                "distinct": 5,
                "characters": 42,
                "longest": "orchestrator",
                "top": [["flow", 3], ["the", 2], ["a", 1]],
            },
        )

    def test_text_from_a_dependency(self):
        output = run({"from": "doc/body"}, {"doc": {"body": "b a b"}})
        self.assertEqual(output["top"], [["b", 2], ["a", 1]])

    def test_empty_text(self):
        output = run({"text": ""})
        self.assertEqual(output, {"words": 0, "distinct": 0, "characters": 0, "longest": None, "top": []})

    def test_bad_input_is_fatal(self):
        with self.assertRaisesRegex(flow.Fatal, "exactly one of `text` and `from`"):
            run({})
        with self.assertRaisesRegex(flow.Fatal, "must be a string, not int"):
            run({"text": 5})
        with self.assertRaisesRegex(flow.Fatal, "unknown input field"):
            run({"text": "a", "color": "red"})


if __name__ == "__main__":
    unittest.main()
