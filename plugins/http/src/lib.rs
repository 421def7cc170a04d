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

mod input;
mod output;

pub use input::{DEFAULT_IN_FLIGHT, Input, MAX_IN_FLIGHT, Params};
pub use output::{Body, InOrder, Output, output};

use flow_plugin_sdk::{
    ActionError, Context, IntoOutput, JsonOutput, Request, export_action, http, log, secret,
};

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

fn run(_: &Context, request: Request<Input>) -> Result<JsonOutput, ActionError> {
    match request.input {
        Input::One(params) => {
            let response = build(&params)?.send()?;
            logged(&params, &response);
            output(&params, response)?.into_json().map(JsonOutput::new)
        }
        Input::Many {
            requests,
            in_flight,
        } => {
            let built = requests.iter().map(build).collect::<Result<Vec<_>, _>>()?;
            // Each output is made and written as its response arrives,
            // while the requests after it wait on the network.
            let mut outputs = InOrder::new(requests.len());
            let mut first_failure: Option<(usize, ActionError)> = None;
            let mut received = 0;
            http::send_each(built, in_flight, |i, result| {
                let params = &requests[i];
                let made = result.map_err(ActionError::from).and_then(|response| {
                    received += response.body.len();
                    outputs.put(i, output(params, response)?)
                });
                match made {
                    Ok(()) => {}
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
            outputs
                .finish()
                .map_err(|i| in_batch(i, ActionError::fatal("not sent")))
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

    #[test]
    fn a_failure_in_a_batch_keeps_its_kind_and_names_its_place() {
        let error = in_batch(3, ActionError::retryable("503"));
        assert!(error.is_retryable());
        assert_eq!(error.message(), "requests[3]: 503");
        assert!(!in_batch(0, ActionError::fatal("404")).is_retryable());
    }

    #[test]
    fn one_body_at_most() {
        let p: Params = flow_plugin_sdk::serde_json::from_value(
            json!({ "url": "https://a.example/x", "json": {}, "body": "x" }),
        )
        .unwrap();
        assert!(build(&p).is_err());
    }
}
