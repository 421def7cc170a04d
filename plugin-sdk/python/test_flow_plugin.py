"""Unit tests of the Python helper, run with plain Python (`make test`)."""

import json
import unittest

import flow_plugin as flow

CONTEXT = flow.Context("w", "r", "n", 1)


class RequestTests(unittest.TestCase):
    def test_parses_input_deps_and_errors(self):
        request = flow.Request.from_json(
            '{"input": {"a": 1}, "deps": {"x": {"v": [1, 2]}}, "errors": {"y": "fatal error: no"}}'
        )
        self.assertEqual(request.input, {"a": 1})
        self.assertEqual(request.deps.get("x"), {"v": [1, 2]})
        self.assertEqual(request.deps.error("y"), "fatal error: no")
        self.assertEqual(list(request.deps.items()), [("x", {"v": [1, 2]})])
        self.assertEqual(len(request.deps), 1)

    def test_outputs_the_host_holds_are_asked_for_when_first_read(self):
        asked = []

        def fetch(node):
            asked.append(node)
            return '{"xs": [1, 2, 3]}' if node == "big" else None

        deps = flow.Deps({}, {}, ["big", "gone"], fetch)
        self.assertEqual(len(deps), 2)
        self.assertEqual(asked, [], "nothing asked before a read")
        self.assertEqual(deps.resolve("big/xs/2"), 3)
        self.assertEqual(deps.get("big"), {"xs": [1, 2, 3]})
        self.assertEqual(asked, ["big"], "asked once")
        self.assertIsNone(deps.get("gone"))
        self.assertEqual(deps.get("other", "none"), "none")
        self.assertEqual(list(deps.items()), [("big", {"xs": [1, 2, 3]}), ("gone", None)])
        self.assertEqual(asked, ["big", "gone"])

    def test_resolve_follows_json_pointers(self):
        deps = flow.Deps({"order": {"items": [{"price": 3}], "a/b": 1}}, {})
        self.assertEqual(deps.resolve("order/items/0/price"), 3)
        self.assertEqual(deps.resolve("order/a~1b"), 1)
        self.assertEqual(deps.resolve("order")["a/b"], 1)

    def test_resolve_says_what_is_missing(self):
        deps = flow.Deps({"a": {"b": 1}}, {"bad": "fatal error: no"})
        with self.assertRaisesRegex(flow.Fatal, "which is not a dependency of this node; its dependencies are: a"):
            deps.resolve("z")
        with self.assertRaisesRegex(flow.Fatal, "the output of `a` has nothing at `/c`"):
            deps.resolve("a/c")
        with self.assertRaisesRegex(flow.Fatal, "refers to `bad`, which failed: fatal error: no"):
            deps.resolve("bad")


class InvokeTests(unittest.TestCase):
    def test_output_is_json(self):
        output = flow.invoke(lambda ctx, request: {"seen": request.input}, CONTEXT, '{"input": 5}')
        self.assertEqual(json.loads(output), {"seen": 5})

    def test_output_is_compact_utf8(self):
        output = flow.invoke(
            lambda ctx, request: {"word": "caf\u00e9", "list": [1, 2.5]}, CONTEXT, '{"input": {}}'
        )
        self.assertEqual(output, '{"word":"caf\u00e9","list":[1,2.5]}')

    def test_lone_surrogate_is_left_escaped_for_the_host_to_refuse(self):
        output = flow.invoke(lambda ctx, request: ["a\ud800"], CONTEXT, '{"input": {}}')
        self.assertEqual(output, '["a\\ud800"]')

    def test_non_finite_number_is_fatal(self):
        with self.assertRaisesRegex(flow.Fatal, "not valid JSON: Out of range float"):
            flow.invoke(lambda ctx, request: {"x": float("nan")}, CONTEXT, '{"input": {}}')

    def test_action_errors_pass_through(self):
        def busy(ctx, request):
            raise flow.Retryable("try later")

        with self.assertRaises(flow.Retryable):
            flow.invoke(busy, CONTEXT, '{"input": {}}')

    def test_other_exceptions_are_fatal_and_named(self):
        def broken(ctx, request):
            return request.input["missing"]

        with self.assertRaisesRegex(flow.Fatal, "^KeyError: 'missing'$"):
            flow.invoke(broken, CONTEXT, '{"input": {}}')

    def test_output_that_is_not_json_is_fatal(self):
        with self.assertRaisesRegex(flow.Fatal, "not valid JSON"):
            flow.invoke(lambda ctx, request: {1, 2}, CONTEXT, '{"input": {}}')


if __name__ == "__main__":
    unittest.main()


class HttpTests(unittest.TestCase):
    """The HTTP helper's own logic, against a scripted stand-in for the host."""

    def setUp(self):
        import flow_plugin_http as http

        self.http = http
        saved = {name: getattr(http, name) for name in ("_start", "_finish", "poll")}
        self.addCleanup(lambda: [setattr(http, k, v) for k, v in saved.items()])

    def test_a_redirect_leads_to_the_next_request_until_none_is_left(self):
        http = self.http
        post = ("POST", "https://a.example/v1/form", {"content-type": "text/plain", "x-keep": "1"}, b"data")
        self.assertIsNone(http._next_hop(post, http.Response(200, [("location", "/x")]), 5))
        see_other = http.Response(303, [("location", "/done")])
        self.assertEqual(http._next_hop(post, see_other, 5), ("GET", "https://a.example/done", {"x-keep": "1"}, b""))
        again = http.Response(307, [("location", "again")])
        self.assertEqual(http._next_hop(post, again, 5)[:2], ("POST", "https://a.example/v1/again"))
        with self.assertRaisesRegex(flow.Retryable, "more than 5 redirects from https://a.example/loop"):
            http._next_hop(post, http.Response(302, [("location", "/loop")]), 0)

    def test_following_a_redirect_holds_up_no_other_request(self):
        # Three requests to /gather are answered only once all three were
        # sent; /redirect answers at once. The host reports the redirect
        # ready first and the refused request later.
        http = self.http
        sent = []

        class Pending:
            def __init__(self, url):
                self.url = url

            def subscribe(self):
                return self

            def ready(self):
                if "/gather" in self.url:
                    return sum("/gather" in url for url in sent) >= 3
                return True

        def start(method, url, headers, body):
            sent.append(url)
            return Pending(url), f"{method} {url}"

        def finish(pending, what):
            self.assertTrue(pending.ready(), f"{what} was read before it was answered")
            if "/redirect" in pending.url:
                return http.Response(302, [("location", "/gather")])
            if "/refused" in pending.url:
                raise flow.Fatal(f"request refused by the host: {what}")
            return http.Response(200, [], b"together")

        class Poll:
            @staticmethod
            def poll(pollables):
                ready = [i for i, p in enumerate(pollables) if p.ready()]
                self.assertTrue(ready, f"no request can be answered: {[p.url for p in pollables]}")
                redirects = [i for i in ready if "/redirect" in pollables[i].url]
                return redirects or ready

        http._start, http._finish, http.poll = start, finish, Poll
        base = "http://h.example"
        urls = ["/gather", "/redirect", "/refused", "/gather"]
        results = http.send_all([{"url": base + url} for url in urls], in_flight=3)
        self.assertEqual([r.body for r in results if isinstance(r, http.Response)], [b"together"] * 3)
        self.assertIsInstance(results[2], flow.Fatal)
        self.assertEqual(sent.count(base + "/gather"), 3)
