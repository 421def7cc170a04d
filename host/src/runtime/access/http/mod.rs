//! Outbound HTTP through `wasi:http`, checked against the node's grants.

mod grant;
mod send;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::report::HttpStats;
use http::HeaderValue;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

pub use grant::HttpGrant;
pub(crate) use grant::{literal_ip, port_of};

/// The counters behind [`HttpStats`], shared with requests in flight.
#[derive(Debug, Default)]
pub(crate) struct HttpCounters {
    requests: AtomicU64,
    refused: AtomicU64,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
}

impl HttpCounters {
    pub(crate) fn stats(&self) -> HttpStats {
        HttpStats {
            requests: self.requests.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
        }
    }
}

/// The `wasi:http` hooks of one attempt: every request is checked against
/// the node's grants before anything is sent.
pub(crate) struct HttpAccess {
    grants: Arc<[HttpGrant]>,
    /// Placeholder tokens and the values they stand for in headers.
    placeholders: Arc<[(String, Arc<str>)]>,
    max_requests: u64,
    max_response: u64,
    deadline: Instant,
    pub(crate) counters: Arc<HttpCounters>,
    /// Why requests were refused, for the attempt's log.
    pub(crate) notes: Arc<Mutex<Vec<String>>>,
}

impl HttpAccess {
    pub(crate) fn new(
        grants: &[HttpGrant],
        placeholders: Vec<(String, Arc<str>)>,
        max_requests: u64,
        max_response: u64,
        deadline: Instant,
    ) -> Self {
        Self {
            grants: grants.into(),
            placeholders: placeholders.into(),
            max_requests,
            max_response,
            deadline,
            counters: Arc::default(),
            notes: Arc::default(),
        }
    }

    fn note(&self, note: String) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(note);
    }

    /// The grant that allows `request`, or why none does.
    fn check(&self, request: &http::Request<WasiBody>) -> Result<&HttpGrant, String> {
        let uri = request.uri();
        let method = request.method().as_str();
        let scheme = uri.scheme_str().unwrap_or("https");
        let host = uri.host().unwrap_or("");
        let port = port_of(uri);
        let path = uri.path();
        // Only a refusal needs the request shown.
        let shown = || {
            format!(
                "{method} {scheme}://{}{path}",
                uri.authority().map_or("", |a| a.as_str())
            )
        };
        if self.grants.is_empty() {
            return Err(format!(
                "refused {}: this node has no HTTP grant; allow it with \
                 http = [\"{}\"] in the node's table",
                shown(),
                HttpGrant::suggest(scheme, host, port)
            ));
        }
        if let Some(grant) = self
            .grants
            .iter()
            .find(|grant| grant.allows(method, scheme, host, port, path))
        {
            let sent = self.counters.requests.load(Ordering::Relaxed);
            if sent >= self.max_requests {
                return Err(format!(
                    "refused {}: the attempt already sent {sent} requests, the limit \
                     (http_max_requests)",
                    shown()
                ));
            }
            return Ok(grant);
        }
        let granted: Vec<String> = self.grants.iter().map(ToString::to_string).collect();
        Err(format!(
            "refused {}: no grant of this node allows it (it may reach {}); \
             allow it with \"{}\" in `http`",
            shown(),
            granted.join(", "),
            HttpGrant::suggest(scheme, host, port)
        ))
    }

    /// Puts the values of placeholder secrets in the request's headers.
    fn substitute(&self, request: &mut http::Request<WasiBody>) {
        if self.placeholders.is_empty() {
            return;
        }
        for value in request.headers_mut().values_mut() {
            let Ok(text) = value.to_str() else { continue };
            let mut text = text.to_string();
            let mut changed = false;
            for (token, secret) in self.placeholders.iter() {
                if text.contains(token.as_str()) {
                    text = text.replace(token.as_str(), secret);
                    changed = true;
                }
            }
            if changed && let Ok(mut new) = HeaderValue::from_str(&text) {
                new.set_sensitive(true);
                *value = new;
            }
        }
    }

    /// Timeouts within what is left of the attempt's time.
    fn timeouts(&self, options: Option<RequestOptions>) -> send::Timeouts {
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let within = |asked: Option<Duration>| asked.map_or(left, |asked| asked.min(left));
        let options = options.unwrap_or_default();
        send::Timeouts {
            connect: within(options.connect_timeout),
            first_byte: within(options.first_byte_timeout),
            between_bytes: within(options.between_bytes_timeout),
        }
    }
}

type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for HttpAccess {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let grant = match self.check(&request) {
            Ok(grant) => grant,
            Err(note) => {
                self.note(note);
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        let private = grant.private;
        // Counted now, so that the limit holds for requests in flight.
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.substitute(&mut request);
        let counters = self.counters.clone();
        let request = request.map(|body| {
            let counters = counters.clone();
            body.map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    counters
                        .bytes_out
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
            .boxed_unsync()
        });
        let target = send::Target {
            timeouts: self.timeouts(options),
            max_response: self.max_response,
            private,
            counters: self.counters.clone(),
            notes: self.notes.clone(),
        };
        Box::new(send::send(request, target))
    }
}
