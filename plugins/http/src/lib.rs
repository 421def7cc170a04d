//! `http`: sends an HTTP request, or many, and returns the responses, as far
//! as the node's `http` grants allow.
//!
//! Input: `url`; optionally `method` (default `GET`), `headers` (a table),
//! `json` (a value sent as a JSON body) or `body` (text), `bearer_secret`
//! (the name of a granted secret sent as `authorization: Bearer ...`), and
//! `accept_status` (a list of statuses returned as they are; by default a
//! 5xx or 429 is a retryable error and another 4xx a fatal one).
//!
//! Output: `status`, `headers` (names in lower case) and `body`, parsed as
//! JSON when the response says it is JSON, else text.
//!
//! Many requests: `requests`, a list of such inputs, and optionally
//! `in_flight` (how many wait for their responses at once, default 8, at
//! most 64). Output: `responses`, the outputs in the order of `requests`,
//! each made as its response arrives. The first request that fails fails
//! the node, named by its place. The attempt's log has one line for the
//! batch (requests, bytes received), not one per request.
//!
//! ```toml
//! [nodes.rates]
//! action = "http"
//! input = { url = "https://api.example.com/v1/rates", bearer_secret = "API_TOKEN" }
//! http = ["https://api.example.com/v1/"]
//! secrets = ["API_TOKEN"]
//! ```

use std::collections::BTreeMap;

use flow_plugin_sdk::serde::de::{Deserializer, Error as _};
use flow_plugin_sdk::serde::{Deserialize, Serialize};
use flow_plugin_sdk::serde_json::Value;
use flow_plugin_sdk::serde_json::value::RawValue;
use flow_plugin_sdk::{ActionError, Context, Request, export_action, http, log, secret};

/// The node's `input` table.
#[derive(Debug, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Params {
    /// Where to send it.
    pub url: String,
    /// `GET`, `POST`, ...
    #[serde(default = "get")]
    pub method: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    pub json: Option<Value>,
    /// A text body.
    pub body: Option<String>,
    /// A secret sent as a bearer token.
    pub bearer_secret: Option<String>,
    /// Statuses returned as they are, whatever they are.
    #[serde(default)]
    pub accept_status: Vec<u16>,
}

fn get() -> String {
    "GET".into()
}

/// Requests a node may have waiting at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// The node's input: one request, or many.
#[derive(Debug)]
pub enum Input {
    /// `url`, ...
    One(Params),
    /// `requests = [...]`, `in_flight`
    Many {
        /// The requests, in order.
        requests: Vec<Params>,
        /// How many wait for their responses at once.
        in_flight: usize,
    },
}

/// `requests` and `in_flight`, before each request is read.
#[derive(Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
struct Batch {
    requests: Vec<Value>,
    #[serde(default = "in_flight")]
    in_flight: usize,
}

fn in_flight() -> usize {
    8
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.get("requests").is_none() {
            return Params::deserialize(value)
                .map(Input::One)
                .map_err(D::Error::custom);
        }
        let batch = Batch::deserialize(value).map_err(D::Error::custom)?;
        if !(1..=MAX_IN_FLIGHT).contains(&batch.in_flight) {
            return Err(D::Error::custom(format!(
                "in_flight: {} is not between 1 and {MAX_IN_FLIGHT}",
                batch.in_flight
            )));
        }
        let requests = batch
            .requests
            .into_iter()
            .enumerate()
            .map(|(i, request)| {
                Params::deserialize(request)
                    .map_err(|e| D::Error::custom(format!("requests[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Input::Many {
            requests,
            in_flight: batch.in_flight,
        })
    }
}

/// The request `params` describe, ready to send.
pub fn build(params: &Params) -> Result<http::Request, ActionError> {
    let mut request = http::request(&params.method, &params.url);
    for (name, value) in &params.headers {
        request = request.header(name, value);
    }
    if let Some(name) = &params.bearer_secret {
        request = request.header("authorization", &format!("Bearer {}", secret(name)?));
    }
    match (&params.json, &params.body) {
        (Some(_), Some(_)) => Err(ActionError::fatal("give `json` or `body`, not both")),
        (Some(value), None) => Ok(request.json(value)?),
        (None, Some(text)) => Ok(request.body(text.as_bytes().to_vec())),
        (None, None) => Ok(request),
    }
}

/// What a node returns for one request.
#[derive(Debug, Serialize)]
#[serde(crate = "flow_plugin_sdk::serde")]
pub struct Output {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body, as it came when it is JSON (checked, not rebuilt), else
    /// as text.
    pub body: Body,
}

/// A response's body.
#[derive(Debug, Serialize)]
#[serde(crate = "flow_plugin_sdk::serde", untagged)]
pub enum Body {
    /// JSON, kept as received.
    Json(Box<RawValue>),
    /// Anything else, as text.
    Text(String),
}

/// What a node returns: one output, or one per request.
#[derive(Debug, Serialize)]
#[serde(crate = "flow_plugin_sdk::serde", untagged)]
pub enum Outputs {
    /// For `url`.
    One(Output),
    /// For `requests`.
    Many {
        /// In the order of the requests, each made as it arrived.
        responses: Vec<Output>,
    },
}

/// The output for `response`, or the error its status means.
pub fn output(params: &Params, response: http::Response) -> Result<Output, ActionError> {
    let status = response.status;
    let json_body = response
        .header("content-type")
        .is_some_and(|t| t.contains("json"));
    let body = if json_body {
        Body::Json(response.json::<Box<RawValue>>()?)
    } else {
        Body::Text(String::from_utf8_lossy(&response.body).into_owned())
    };
    let accepted = params.accept_status.contains(&status);
    if !accepted && (status >= 500 || status == 429) {
        return Err(ActionError::retryable(format!(
            "{} {} answered {status}",
            params.method, params.url
        )));
    }
    if !accepted && status >= 400 {
        let text = match &body {
            Body::Json(raw) => raw.get(),
            Body::Text(text) => text,
        };
        return Err(ActionError::fatal(format!(
            "{} {} answered {status}: {}",
            params.method,
            params.url,
            shorten(text)
        )));
    }
    let headers: BTreeMap<String, String> = response.headers.into_iter().collect();
    Ok(Output {
        status,
        headers,
        body,
    })
}

fn shorten(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn run(_: &Context, request: Request<Input>) -> Result<Outputs, ActionError> {
    match request.input {
        Input::One(params) => {
            let response = build(&params)?.send()?;
            logged(&params, &response);
            output(&params, response).map(Outputs::One)
        }
        Input::Many {
            requests,
            in_flight,
        } => {
            let built = requests.iter().map(build).collect::<Result<Vec<_>, _>>()?;
            // Each output is made as its response arrives, while the
            // requests after it wait on the network.
            let mut responses: Vec<Option<Output>> = requests.iter().map(|_| None).collect();
            let mut first_failure: Option<(usize, ActionError)> = None;
            let mut received = 0;
            http::send_each(built, in_flight, |i, result| {
                let params = &requests[i];
                let made = result.map_err(ActionError::from).and_then(|response| {
                    received += response.body.len();
                    output(params, response)
                });
                match made {
                    Ok(output) => responses[i] = Some(output),
                    Err(error) if first_failure.as_ref().is_none_or(|(at, _)| i < *at) => {
                        first_failure = Some((i, error));
                    }
                    Err(_) => {}
                }
            });
            // One line for the batch, not one per request.
            log::debug(&format!(
                "{} requests, {in_flight} at once: {received} bytes received",
                requests.len()
            ));
            if let Some((i, error)) = first_failure {
                return Err(in_batch(i, error));
            }
            let responses = responses
                .into_iter()
                .enumerate()
                .map(|(i, output)| {
                    output.ok_or_else(|| in_batch(i, ActionError::fatal("not sent")))
                })
                .collect::<Result<_, _>>()?;
            Ok(Outputs::Many { responses })
        }
    }
}

/// `error` of the `i`-th request of a batch, said so.
fn in_batch(i: usize, error: ActionError) -> ActionError {
    let message = format!("requests[{i}]: {}", error.message());
    if error.is_retryable() {
        ActionError::retryable(message)
    } else {
        ActionError::fatal(message)
    }
}

fn logged(params: &Params, response: &http::Response) {
    log::debug(&format!(
        "{} {}: {}, {} bytes",
        params.method,
        params.url,
        response.status,
        response.body.len()
    ));
}

export_action! {
    name: "http",
    description: "Sends an HTTP request, or many at once, and returns the responses, as far as the node is granted",
    run: run,
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::json;

    fn params(extra: Value) -> Params {
        let mut value = json!({ "url": "https://a.example/x" });
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        flow_plugin_sdk::serde_json::from_value(value).unwrap()
    }

    fn response(status: u16, content_type: &str, body: &str) -> http::Response {
        http::Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn json_bodies_are_parsed_and_text_kept() {
        let p = params(json!({}));
        let out = |response| {
            flow_plugin_sdk::serde_json::to_value(output(&p, response).unwrap()).unwrap()
        };
        let json = out(response(200, "application/json", "{ \"a\": 1 }"));
        assert_eq!(json["body"], json!({"a": 1}));
        assert_eq!(out(response(200, "text/plain", "hi"))["body"], "hi");
    }

    #[test]
    fn statuses_decide_retryable_or_fatal() {
        let p = params(json!({}));
        assert!(
            output(&p, response(503, "text/plain", ""))
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            output(&p, response(429, "text/plain", ""))
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            !output(&p, response(404, "text/plain", ""))
                .unwrap_err()
                .is_retryable()
        );
        let p = params(json!({ "accept_status": [404] }));
        assert_eq!(
            output(&p, response(404, "text/plain", "")).unwrap().status,
            404
        );
    }

    #[test]
    fn a_list_of_requests_is_read_with_each_named_by_its_place() {
        let input: Input = flow_plugin_sdk::serde_json::from_value(json!({
            "requests": [{ "url": "https://a.example/1" }, { "url": "https://a.example/2", "method": "POST" }],
            "in_flight": 2,
        }))
        .unwrap();
        let Input::Many {
            requests,
            in_flight,
        } = input
        else {
            panic!("not read as a batch")
        };
        assert_eq!(
            (requests.len(), requests[1].method.as_str(), in_flight),
            (2, "POST", 2)
        );

        let bad = |value: Value| {
            flow_plugin_sdk::serde_json::from_value::<Input>(value)
                .unwrap_err()
                .to_string()
        };
        let error = bad(json!({ "requests": [{ "url": "https://a.example/1" }, { "uri": "x" }] }));
        assert!(
            error.starts_with("requests[1]: unknown field `uri`"),
            "{error}"
        );
        let error = bad(json!({ "requests": [], "in_flight": 0 }));
        assert!(
            error.contains("in_flight: 0 is not between 1 and 64"),
            "{error}"
        );
        let error = bad(json!({ "requests": [], "url": "https://a.example" }));
        assert!(error.contains("unknown field `url`"), "{error}");
        assert!(matches!(
            flow_plugin_sdk::serde_json::from_value::<Input>(json!({ "url": "https://a.example" })),
            Ok(Input::One(_))
        ));
    }

    #[test]
    fn a_failure_in_a_batch_keeps_its_kind_and_names_its_place() {
        let error = in_batch(3, ActionError::retryable("503"));
        assert!(error.is_retryable());
        assert_eq!(error.message(), "requests[3]: 503");
        assert!(!in_batch(0, ActionError::fatal("404")).is_retryable());
    }

    #[test]
    fn one_body_at_most() {
        let p = params(json!({ "json": {}, "body": "x" }));
        assert!(build(&p).is_err());
    }
}
