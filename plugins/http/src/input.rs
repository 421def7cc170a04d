//! The node's input: one request, or a batch of them.

use std::collections::BTreeMap;
use std::fmt;

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde::de::{
    DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor,
};
use flow_plugin_sdk::serde_json::{Map, Value};

/// One request: the node's `input` table, or an item of `requests`.
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

/// Requests waiting at once when `in_flight` is not given.
pub const DEFAULT_IN_FLIGHT: usize = 8;

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

/// Read field by field: a batch's requests straight into their `Params`,
/// with no document tree in between.
impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InputVisitor)
    }
}

struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = Input;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table with `url` (one request) or `requests` (many)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Input, A::Error> {
        let mut requests = None;
        let mut in_flight: Option<usize> = None;
        // The fields of a single request, read as one at the end.
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "requests" => requests = Some(map.next_value_seed(Requests)?),
                "in_flight" => in_flight = Some(map.next_value()?),
                _ => {
                    let value = map.next_value()?;
                    fields.insert(key, value);
                }
            }
        }
        let Some(requests) = requests else {
            if let Some(in_flight) = in_flight {
                fields.insert("in_flight".into(), in_flight.into());
            }
            return Params::deserialize(Value::Object(fields))
                .map(Input::One)
                .map_err(A::Error::custom);
        };
        if let Some(key) = fields.keys().next() {
            return Err(A::Error::custom(format!(
                "unknown field `{key}` beside `requests`, expected `in_flight`"
            )));
        }
        let in_flight = in_flight.unwrap_or(DEFAULT_IN_FLIGHT);
        if !(1..=MAX_IN_FLIGHT).contains(&in_flight) {
            return Err(A::Error::custom(format!(
                "in_flight: {in_flight} is not between 1 and {MAX_IN_FLIGHT}"
            )));
        }
        Ok(Input::Many {
            requests,
            in_flight,
        })
    }
}

/// `requests`: a list of [`Params`].
struct Requests;

impl<'de> DeserializeSeed<'de> for Requests {
    type Value = Vec<Params>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Params>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Requests {
    type Value = Vec<Params>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of requests")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Params>, A::Error> {
        let mut requests = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(params) = seq.next_element()? {
            requests.push(params);
        }
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::json;
    use flow_plugin_sdk::{ActionError, Request};

    /// `input` read as the SDK reads a node's request, errors named by
    /// their place.
    fn read(input: Value) -> Result<Input, ActionError> {
        Request::<Input>::from_json(&json!({ "input": input }).to_string()).map(|r| r.input)
    }

    #[test]
    fn a_list_of_requests_is_read_with_each_named_by_its_place() {
        let input = read(json!({
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

        let bad = |value: Value| read(value).unwrap_err().message().to_string();
        let error = bad(json!({ "requests": [{ "url": "https://a.example/1" }, { "uri": "x" }] }));
        assert!(
            error.starts_with("invalid input: input.requests[1].uri: unknown field `uri`"),
            "{error}"
        );
        let error = bad(json!({ "requests": [], "in_flight": 0 }));
        assert_eq!(
            error,
            "invalid input: input: in_flight: 0 is not between 1 and 64"
        );
        let error = bad(json!({ "requests": [], "url": "https://a.example" }));
        assert!(
            error.contains("unknown field `url` beside `requests`"),
            "{error}"
        );
        let error = bad(json!({ "requests": {} }));
        assert!(error.contains("expected a list of requests"), "{error}");
        let error = bad(json!("https://a.example"));
        assert!(error.contains("expected a table with `url`"), "{error}");
    }

    #[test]
    fn one_request_is_read_with_its_defaults() {
        let Input::One(params) = read(json!({ "url": "https://a.example" })).unwrap() else {
            panic!("not read as one request")
        };
        assert_eq!(
            (params.url.as_str(), params.method.as_str()),
            ("https://a.example", "GET")
        );
        let error = read(json!({ "url": "https://a.example", "in_flight": 2 }))
            .unwrap_err()
            .message()
            .to_string();
        assert!(error.contains("unknown field `in_flight`"), "{error}");
        let error = read(json!({ "method": "GET" }))
            .unwrap_err()
            .message()
            .to_string();
        assert!(error.contains("missing field `url`"), "{error}");
    }
}
