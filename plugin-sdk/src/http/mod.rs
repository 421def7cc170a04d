//! Outbound HTTP, as far as the node's grants allow.
//!
//! A small blocking client over `wasi:http`. The host checks every request
//! against the `http` grants of the node before anything is sent; a
//! request no grant allows fails with [`HttpError::Denied`], and the
//! attempt's log says which grant would allow it.
//!
//! ```no_run
//! use flow_plugin_sdk::http;
//! # fn main() -> Result<(), http::HttpError> {
//! let response = http::get("https://api.example.com/v1/users")?;
//! let users: flow_plugin_sdk::serde_json::Value = response.json()?;
//! let created = http::post_json("https://api.example.com/v1/users", &users)?;
//! let deleted = http::request("DELETE", "https://api.example.com/v1/users/7")
//!     .header("authorization", "Bearer ...")
//!     .send()?;
//! # Ok(()) }
//! ```
//!
//! Redirects (301, 302, 303, 307, 308) are followed, up to five, each
//! checked by the host like the first request.
//!
//! [`send_all`] sends many requests with several in flight at once, which
//! is much faster than one after the other when each waits on the network
//! ([`send_each`] hands over each response as it arrives):
//!
//! ```no_run
//! use flow_plugin_sdk::http;
//! let pages = (1..=50).map(|page| http::request("GET", &format!("https://api.example.com/v1/users?page={page}")));
//! for (page, result) in http::send_all(pages, 16).into_iter().enumerate() {
//!     match result {
//!         Ok(response) => println!("page {}: {}", page + 1, response.status),
//!         Err(error) => println!("page {}: {error}", page + 1),
//!     }
//! }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ActionError;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL cannot be sent: not `http://` or `https://`, or malformed.
    Url(String),
    /// The host refused the request: no grant of the node allows it, or
    /// its destination is on the host's own network.
    Denied(String),
    /// The request was sent but failed: connection, timeout, TLS, a
    /// response over the size limit.
    Failed(String),
    /// The response body is not what was asked for (UTF-8, JSON).
    Body(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Url(message) => write!(f, "bad URL: {message}"),
            HttpError::Denied(message) => write!(f, "request refused by the host: {message}"),
            HttpError::Failed(message) => write!(f, "request failed: {message}"),
            HttpError::Body(message) => write!(f, "unexpected response body: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A refused request or a bad URL will fail again; a failed connection may
/// pass on a later attempt.
impl From<HttpError> for ActionError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Failed(_) => ActionError::retryable(error.to_string()),
            _ => ActionError::fatal(error.to_string()),
        }
    }
}

/// A response, its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (`name` in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|e| HttpError::Body(format!("not UTF-8: {e}")))
    }

    /// The body as JSON, deserialised into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Body(format!("not JSON: {e}")))
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request being built; [`Request::send`] sends it.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    follow_redirects: bool,
}

/// A request of `method` to `url`.
pub fn request(method: &str, url: &str) -> Request {
    Request {
        method: method.to_ascii_uppercase(),
        url: url.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout: None,
        follow_redirects: true,
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    request("GET", url).send()
}

/// `POST url` with `value` as a JSON body.
pub fn post_json<T: Serialize + ?Sized>(url: &str, value: &T) -> Result<Response, HttpError> {
    request("POST", url).json(value)?.send()
}

impl Request {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Body(e.to_string()))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Bounds connecting and waiting for the first byte (the host bounds
    /// both by the attempt's `timeout` anyway).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether to follow redirects (yes by default).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let response = send_once(&self)?;
        self.follow(response)
    }

    /// `response` to this request, or the response at the end of its
    /// redirects.
    fn follow(mut self, mut response: Response) -> Result<Response, HttpError> {
        let mut left = MAX_REDIRECTS;
        while let Some(next) = self.next_hop(&response, left)? {
            left -= 1;
            response = send_once(&next)?;
            self = next;
        }
        Ok(response)
    }

    /// The request `response` redirects this one to, when it is a redirect
    /// to follow and `left` more redirects may be: an error when none may.
    fn next_hop(&self, response: &Response, left: usize) -> Result<Option<Request>, HttpError> {
        let Some(location) = self.location(response) else {
            return Ok(None);
        };
        let mut next = self.clone();
        next.url = resolve(&self.url, location)?;
        if response.status == 303 || (matches!(response.status, 301 | 302) && self.method == "POST")
        {
            next.method = "GET".into();
            next.body.clear();
            next.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        }
        if left == 0 {
            return Err(HttpError::Failed(format!(
                "more than {MAX_REDIRECTS} redirects from {}",
                next.url
            )));
        }
        Ok(Some(next))
    }

    /// Where `response` redirects this request, if it is a redirect to
    /// follow.
    fn location<'r>(&self, response: &'r Response) -> Option<&'r str> {
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        (redirect && self.follow_redirects)
            .then(|| response.header("location"))
            .flatten()
    }
}

/// Sends every request, `in_flight` at a time (at least one), and returns
/// their results in the order of `requests`.
///
/// Each request is checked by the host like one sent alone, and counts
/// towards the attempt's `http_max_requests`. A redirect's next request
/// takes the place of the one redirected, while the others wait on.
pub fn send_all(
    requests: impl IntoIterator<Item = Request>,
    in_flight: usize,
) -> Vec<Result<Response, HttpError>> {
    let requests: Vec<Request> = requests.into_iter().collect();
    let mut results: Vec<Option<Result<Response, HttpError>>> =
        requests.iter().map(|_| None).collect();
    send_each(requests, in_flight, |index, result| {
        results[index] = Some(result);
    });
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(HttpError::Failed("not sent".into()))))
        .collect()
}

/// Sends every request, `in_flight` at a time (at least one), and hands
/// each result to `each` with the request's place in `requests`, in the
/// order the responses arrive.
///
/// Like [`send_all`], but the work on one response (parsing it, say) runs
/// while the requests after it wait on the network, instead of after the
/// last one:
///
/// ```no_run
/// use flow_plugin_sdk::http;
/// let pages: Vec<_> = (1..=50)
///     .map(|page| http::request("GET", &format!("https://api.example.com/v1/users?page={page}")))
///     .collect();
/// let mut users = vec![0; pages.len()];
/// http::send_each(pages, 16, |page, result| {
///     let count = result
///         .and_then(|response| response.json::<Vec<flow_plugin_sdk::serde_json::Value>>())
///         .map_or(0, |list| list.len());
///     users[page] = count;
/// });
/// ```
pub fn send_each(
    requests: impl IntoIterator<Item = Request>,
    in_flight: usize,
    mut each: impl FnMut(usize, Result<Response, HttpError>),
) {
    let requests: Vec<Request> = requests.into_iter().collect();
    send_concurrently(&requests, in_flight.max(1), &mut each);
}

/// The parts of an `http://` or `https://` URL.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_and_query: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>, HttpError> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(HttpError::Url(format!(
            "{url}: only http:// and https:// URLs"
        )));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(HttpError::Url(format!("{url}: no host")));
    }
    let path_and_query = if path.is_empty() { "/" } else { path };
    Ok(Url {
        https,
        authority,
        path_and_query,
    })
}

/// `location` against the URL it came from.
fn resolve(base: &str, location: &str) -> Result<String, HttpError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let url = parse_url(base)?;
    let scheme = if url.https { "https" } else { "http" };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{}{location}", url.authority));
    }
    let path = url.path_and_query.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{scheme}://{}{dir}{location}", url.authority))
}

#[cfg(target_family = "wasm")]
mod wasi;
#[cfg(target_family = "wasm")]
use wasi::{send_concurrently, send_once};

#[cfg(not(target_family = "wasm"))]
fn send_once(request: &Request) -> Result<Response, HttpError> {
    // Native builds (unit tests of a plugin) have no host to send through.
    parse_url(&request.url)?;
    Err(HttpError::Failed(format!(
        "{} {}: HTTP needs the flow host (run the plugin in a workflow)",
        request.method, request.url
    )))
}

#[cfg(not(target_family = "wasm"))]
fn send_concurrently(
    requests: &[Request],
    _: usize,
    mut each: impl FnMut(usize, Result<Response, HttpError>),
) {
    for (index, request) in requests.iter().enumerate() {
        each(
            index,
            send_once(request).and_then(|response| request.clone().follow(response)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_host_and_path() {
        assert_eq!(
            parse_url("https://a.example:8443/v1?x=1#f").unwrap(),
            Url {
                https: true,
                authority: "a.example:8443",
                path_and_query: "/v1?x=1"
            }
        );
        assert_eq!(parse_url("http://a.example").unwrap().path_and_query, "/");
        assert_eq!(
            parse_url("http://a.example?q").unwrap().path_and_query,
            "?q"
        );
        assert!(matches!(parse_url("ftp://a"), Err(HttpError::Url(_))));
        assert!(matches!(parse_url("http:///x"), Err(HttpError::Url(_))));
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let base = "https://a.example/v1/users?page=2";
        assert_eq!(resolve(base, "/login").unwrap(), "https://a.example/login");
        assert_eq!(resolve(base, "next").unwrap(), "https://a.example/v1/next");
        assert_eq!(
            resolve(base, "//b.example/x").unwrap(),
            "https://b.example/x"
        );
        assert_eq!(
            resolve(base, "http://c.example/").unwrap(),
            "http://c.example/"
        );
    }

    fn redirect(status: u16, to: &str) -> Response {
        Response {
            status,
            headers: vec![("location".into(), to.into())],
            body: Vec::new(),
        }
    }

    #[test]
    fn a_redirect_leads_to_the_next_request_until_none_is_left() {
        let post = request("POST", "https://a.example/v1/form")
            .header("content-type", "text/plain")
            .header("x-keep", "1")
            .body("data");
        let ok = Response {
            status: 200,
            ..redirect(200, "/elsewhere")
        };
        assert!(post.next_hop(&ok, 5).unwrap().is_none(), "not a redirect");

        // 303 (and 301 or 302 after a POST) asks for a GET without the body.
        let next = post.next_hop(&redirect(303, "/done"), 5).unwrap().unwrap();
        assert_eq!(
            (next.method.as_str(), next.url.as_str()),
            ("GET", "https://a.example/done")
        );
        assert!(next.body.is_empty());
        assert_eq!(next.headers, [("x-keep".to_string(), "1".to_string())]);
        // 307 repeats the request as it was.
        let next = post.next_hop(&redirect(307, "again"), 5).unwrap().unwrap();
        assert_eq!(
            (next.method.as_str(), next.body.as_slice()),
            ("POST", &b"data"[..])
        );
        assert_eq!(next.url, "https://a.example/v1/again");

        let error = post.next_hop(&redirect(302, "/loop"), 0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "request failed: more than 5 redirects from https://a.example/loop"
        );
        let unfollowed = post.clone().follow_redirects(false);
        assert!(
            unfollowed
                .next_hop(&redirect(302, "/x"), 5)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn refusals_are_fatal_and_failures_retryable() {
        let denied: ActionError = HttpError::Denied("no".into()).into();
        assert!(!denied.is_retryable());
        let failed: ActionError = HttpError::Failed("reset".into()).into();
        assert!(failed.is_retryable());
    }
}
