//! Requests a web page must not be able to make to a server without tokens.
//!
//! A server without tokens listens on loopback only, so only programs of
//! this machine reach it. A web page the user opens is one of them,
//! through the browser: it may send a form-like `POST` to
//! `http://127.0.0.1:PORT` (cross-site request forgery), or have its own
//! host name resolve to 127.0.0.1 and read the answers as its own (DNS
//! rebinding). So such a server answers its API only when the request is
//! addressed to a loopback name (`Host`) and, if a browser says where the
//! request comes from (`Origin`), when that is a loopback page too: the
//! dashboard, the command line and scripts on the machine send those.
//! With tokens, neither attack works: a page cannot present a token it
//! does not know.

use std::net::IpAddr;

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Uri};

/// Why the request is refused, if it is one a web page could have sent.
pub fn refused(headers: &HeaderMap) -> Option<String> {
    if let Some(host) = headers.get(HOST) {
        let name = host
            .to_str()
            .ok()
            .and_then(|text| text.parse::<axum::http::uri::Authority>().ok());
        if !name.is_some_and(|name| is_loopback(name.host())) {
            return Some(format!(
                "this server has no token, so it answers only requests addressed to localhost, \
                 127.0.0.1 or [::1], not to Host {}; to serve other names, give it a token \
                 (`flow token --token-file FILE`, then `flow serve --token-file FILE`)",
                shown(host.as_bytes())
            ));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let from = origin
            .to_str()
            .ok()
            .and_then(|text| text.parse::<Uri>().ok())
            .and_then(|uri| uri.host().map(is_loopback));
        if from != Some(true) {
            return Some(format!(
                "this server has no token, so it refuses requests that web pages of other sites \
                 send (Origin {}); open the dashboard from the server's own address, or give \
                 the server a token",
                shown(origin.as_bytes())
            ));
        }
    }
    None
}

/// Whether a host name is this machine's: `localhost` or a loopback
/// address (`[::1]` in brackets, as URLs write it).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A header's value as it can be quoted in a message: at most 100
/// characters of it.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let cut: String = text.chars().take(100).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn requests_of_this_machine_pass() {
        for pairs in [
            vec![],
            vec![("host", "127.0.0.1:8080")],
            vec![("host", "localhost:8080")],
            vec![("host", "LOCALHOST")],
            vec![("host", "127.1.2.3")],
            vec![("host", "[::1]:8080")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            vec![
                ("host", "localhost:8080"),
                ("origin", "http://localhost:3000"),
            ],
            vec![("host", "[::1]:8080"), ("origin", "http://[::1]:8080")],
        ] {
            assert_eq!(refused(&headers(&pairs)), None, "{pairs:?}");
        }
    }

    #[test]
    fn requests_a_web_page_could_make_are_refused() {
        // DNS rebinding: a page of another name, resolved to 127.0.0.1.
        for host in [
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1",
            "::1",
            "",
        ] {
            let why = refused(&headers(&[("host", host)])).unwrap();
            assert!(why.contains("not to Host"), "{host}: {why}");
        }
        // Cross-site request forgery: the right host, another page.
        for origin in [
            "https://evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
        ] {
            let why = refused(&headers(&[("host", "127.0.0.1:8080"), ("origin", origin)])).unwrap();
            assert!(why.contains("other sites"), "{origin}: {why}");
        }
        let long = "x".repeat(500);
        let why = refused(&headers(&[("host", &long)])).unwrap();
        assert!(why.len() < 400 && why.contains("..."), "{why}");
    }
}
