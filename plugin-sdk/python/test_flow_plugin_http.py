"""Tests of flow_plugin.http outside the host: URLs, redirects, errors."""

import unittest

import flow_plugin
import flow_plugin_http as http


class HttpTest(unittest.TestCase):
    def test_the_client_is_flow_plugin_http(self):
        self.assertIs(flow_plugin.http, http)

    def test_urls_split_into_scheme_host_and_path(self):
        self.assertEqual(http._split("https://a.example:8443/v1?x=1#f"), (True, "a.example:8443", "/v1?x=1"))
        self.assertEqual(http._split("http://a.example"), (False, "a.example", "/"))
        with self.assertRaises(flow_plugin.Fatal):
            http._split("ftp://a.example/")

    def test_redirects_resolve_against_the_request(self):
        base = "https://a.example/v1/users?page=2"
        self.assertEqual(http._resolve(base, "/login"), "https://a.example/login")
        self.assertEqual(http._resolve(base, "next"), "https://a.example/v1/next")
        self.assertEqual(http._resolve(base, "//b.example/x"), "https://b.example/x")

    def test_refusals_are_fatal_and_failures_retryable(self):
        class ErrorCode_HttpRequestDenied:  # noqa: N801 - the generated name
            pass

        class ErrorCode_ConnectionRefused:  # noqa: N801
            pass

        self.assertIsInstance(http._error("GET u", ErrorCode_HttpRequestDenied()), flow_plugin.Fatal)
        self.assertIsInstance(http._error("GET u", ErrorCode_ConnectionRefused()), flow_plugin.Retryable)

    def test_outside_the_host_a_request_says_what_it_needs(self):
        with self.assertRaisesRegex(flow_plugin.Retryable, "needs the flow host"):
            http.get("https://a.example/")

    def test_send_all_gives_each_request_its_result_in_order(self):
        results = http.send_all([{"url": "https://a.example/"}, {"url": "ftp://b.example/"}], in_flight=2)
        self.assertEqual(len(results), 2)
        self.assertIsInstance(results[0], flow_plugin.Retryable)
        self.assertIn("needs the flow host", str(results[0]))
        self.assertIsInstance(results[1], flow_plugin.Fatal)
        self.assertIn("ftp://b.example/", str(results[1]))


if __name__ == "__main__":
    unittest.main()
