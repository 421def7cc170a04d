//! `http`: sends one HTTP request and returns the response, as far as the
//! node's `http` grants allow.
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
//! ```toml
//! [nodes.rates]
//! action = "http"
//! input = { url = "https://api.example.com/v1/rates", bearer_secret = "API_TOKEN" }
//! http = ["https://api.example.com/v1/"]
//! secrets = ["API_TOKEN"]
//! ```

use std::collections::BTreeMap;

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{Value, json};
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

/// The output for `response`, or the error its status means.
pub fn output(params: &Params, response: http::Response) -> Result<Value, ActionError> {
    let status = response.status;
    let json_body = response
        .header("content-type")
        .is_some_and(|t| t.contains("json"));
    let body = if json_body {
        response.json::<Value>()?
    } else {
        Value::String(String::from_utf8_lossy(&response.body).into_owned())
    };
    let accepted = params.accept_status.contains(&status);
    if !accepted && (status >= 500 || status == 429) {
        return Err(ActionError::retryable(format!(
            "{} {} answered {status}",
            params.method, params.url
        )));
    }
    if !accepted && status >= 400 {
        return Err(ActionError::fatal(format!(
            "{} {} answered {status}: {}",
            params.method,
            params.url,
            shorten(&body.to_string())
        )));
    }
    let headers: BTreeMap<String, String> = response.headers.into_iter().collect();
    Ok(json!({ "status": status, "headers": headers, "body": body }))
}

fn shorten(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn run(_: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let params = request.input;
    let response = build(&params)?.send()?;
    log::debug(&format!(
        "{} {}: {}, {} bytes",
        params.method,
        params.url,
        response.status,
        response.body.len()
    ));
    output(&params, response)
}

export_action! {
    name: "http",
    description: "Sends an HTTP request and returns the response, as far as the node is granted",
    run: run,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let out = output(&p, response(200, "application/json", "{\"a\":1}")).unwrap();
        assert_eq!(out["body"], json!({"a": 1}));
        let out = output(&p, response(200, "text/plain", "hi")).unwrap();
        assert_eq!(out["body"], "hi");
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
            output(&p, response(404, "text/plain", "")).unwrap()["status"],
            404
        );
    }

    #[test]
    fn one_body_at_most() {
        let p = params(json!({ "json": {}, "body": "x" }));
        assert!(build(&p).is_err());
    }
}
