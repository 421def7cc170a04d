//! `hash`: the SHA-256 digest of a string or of a JSON value.
//!
//! Input: `text` (a string) or `from` (a reference `"node/json/pointer"` into
//! a dependency's output). A string is hashed as its UTF-8 bytes; any other
//! value as its compact JSON text with object keys in sorted order, so equal
//! values always have equal digests. Output:
//! `{"sha256": "<64 hex digits>", "bytes": <length hashed>}`.
//!
//! ```toml
//! [nodes.digest]
//! action = "hash"
//! depends_on = ["receipt"]
//! input = { from = "receipt" }
//! ```

use flow_plugin_sdk::serde::{Deserialize, Serialize};
use flow_plugin_sdk::serde_json::{self, Value};
use flow_plugin_sdk::{ActionError, Context, Request, export_action};
use sha2::{Digest, Sha256};

/// The node's `input` table.
#[derive(Debug, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Params {
    text: Option<String>,
    from: Option<String>,
}

/// The digest and the number of bytes it covers.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(crate = "flow_plugin_sdk::serde")]
pub struct Digest256 {
    sha256: String,
    bytes: usize,
}

/// Hashes the text or the referenced value.
pub fn digest(_: &Context, request: Request<Params>) -> Result<Digest256, ActionError> {
    let params = request.input;
    let bytes = match (params.text, &params.from) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(reference)) => match request.deps.resolve(reference)? {
            Value::String(text) => text.clone().into_bytes(),
            value => serde_json::to_vec(value)
                .map_err(|e| ActionError::fatal(format!("cannot encode `{reference}`: {e}")))?,
        },
        _ => {
            return Err(ActionError::fatal(
                "give what to hash with exactly one of `text` and `from`",
            ));
        }
    };
    Ok(Digest256 {
        sha256: hex(&Sha256::digest(&bytes)),
        bytes: bytes.len(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

export_action! {
    name: "hash",
    description: "SHA-256 digest of a string or a JSON value",
    run: digest,
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::json;

    fn run(request: Value) -> Result<Digest256, ActionError> {
        let request = Request::from_json(&request.to_string())?;
        digest(&Context::for_tests("hash"), request)
    }

    #[test]
    fn known_digest_of_text() {
        let output = run(json!({"input": {"text": "abc"}})).unwrap();
        assert_eq!(
            output,
            Digest256 {
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
                bytes: 3
            }
        );
    }

    #[test]
    fn values_hash_as_sorted_compact_json() {
        let a = run(json!({"input": {"from": "x"}, "deps": {"x": {"b": 1, "a": [true]}}})).unwrap();
        let text = run(json!({"input": {"text": r#"{"a":[true],"b":1}"#}})).unwrap();
        assert_eq!(a, text);
    }

    #[test]
    fn needs_exactly_one_source() {
        let error = run(json!({"input": {}})).unwrap_err();
        assert_eq!(
            error.message(),
            "give what to hash with exactly one of `text` and `from`"
        );
    }
}
