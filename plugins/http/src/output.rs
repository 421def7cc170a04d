//! What a node returns: for each response its status, headers and body,
//! and for a batch all of them in the order of the requests.

use std::collections::BTreeMap;

use flow_plugin_sdk::serde::Serialize;
use flow_plugin_sdk::serde_json::value::RawValue;
use flow_plugin_sdk::{ActionError, IntoOutput, JsonOutput, http};

use crate::Params;

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

/// The outputs of a batch, written into one document in the order of the
/// requests as each one's turn comes: most responses arrive in order, so
/// the document grows while later requests wait on the network, and little
/// is left to write after the last.
#[derive(Debug)]
pub struct InOrder {
    text: String,
    /// Outputs that came before their turn.
    early: Vec<Option<Output>>,
    next: usize,
}

impl InOrder {
    /// Room for the outputs of `count` requests.
    pub fn new(count: usize) -> Self {
        Self {
            text: String::from("{\"responses\":["),
            early: (0..count).map(|_| None).collect(),
            next: 0,
        }
    }

    /// The output of request `index`: written now if its turn has come,
    /// with those after it that came early.
    pub fn put(&mut self, index: usize, output: Output) -> Result<(), ActionError> {
        if index != self.next {
            self.early[index] = Some(output);
            return Ok(());
        }
        self.write(&output)?;
        while let Some(output) = self.early.get_mut(self.next).and_then(Option::take) {
            self.write(&output)?;
        }
        Ok(())
    }

    fn write(&mut self, output: &Output) -> Result<(), ActionError> {
        let json = output.into_json()?;
        if self.next == 0 {
            // Room for the rest, if they are like the first.
            self.text.reserve((json.len() + 1) * self.early.len() + 2);
        } else {
            self.text.push(',');
        }
        self.text.push_str(&json);
        self.next += 1;
        Ok(())
    }

    /// The document, or the index of the first request without an output.
    pub fn finish(mut self) -> Result<JsonOutput, usize> {
        if self.next < self.early.len() {
            return Err(self.next);
        }
        self.text.push_str("]}");
        Ok(JsonOutput::new(self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::{self, Value, json};

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
    fn a_batch_is_written_in_the_order_of_its_requests() {
        let p = params(json!({}));
        let made =
            |n: u16| output(&p, response(200 + n, "application/json", &n.to_string())).unwrap();
        let mut outputs = InOrder::new(3);
        outputs.put(2, made(2)).unwrap();
        outputs.put(0, made(0)).unwrap();
        let mut unfinished = InOrder::new(3);
        unfinished.put(1, made(1)).unwrap();
        assert_eq!(unfinished.finish().unwrap_err(), 0);
        outputs.put(1, made(1)).unwrap();
        let document: Value = serde_json::from_str(outputs.finish().unwrap().as_str()).unwrap();
        let bodies: Vec<&Value> = document["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["body"])
            .collect();
        assert_eq!(bodies, [&json!(0), &json!(1), &json!(2)]);
        assert_eq!(document["responses"][1]["status"], 201);
    }
}
