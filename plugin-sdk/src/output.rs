//! What an action returns: a value that serde serialises, or JSON text the
//! action wrote itself.

use serde::Serialize;

use crate::ActionError;

/// An action's output, as the JSON text handed to the host. Every
/// `serde::Serialize` type is one, and so is [`JsonOutput`].
pub trait IntoOutput {
    /// The JSON text.
    fn into_json(self) -> Result<String, ActionError>;
}

impl<T: Serialize> IntoOutput for T {
    fn into_json(self) -> Result<String, ActionError> {
        serde_json::to_string(&self).map_err(|error| {
            ActionError::fatal(format!("the action's output is not valid JSON: {error}"))
        })
    }
}

/// JSON text that the action wrote itself, handed to the host as it is:
/// for an output built piece by piece, such as one part per response as it
/// arrives, without serialising it all once more at the end. The host
/// checks it like any output: text that is not JSON fails the attempt.
///
/// ```
/// use flow_plugin_sdk::{ActionError, Context, JsonOutput, Request};
/// use flow_plugin_sdk::serde_json::{self, Value};
///
/// fn squares(_: &Context, request: Request<Vec<i64>>) -> Result<JsonOutput, ActionError> {
///     let mut text = String::from("[");
///     for (i, n) in request.input.iter().enumerate() {
///         if i > 0 {
///             text.push(',');
///         }
///         text.push_str(&(n * n).to_string());
///     }
///     text.push(']');
///     Ok(JsonOutput::new(text))
/// }
///
/// let request = Request::from_json(r#"{"input": [1, 2, 3]}"#)?;
/// let output = squares(&Context::for_tests("squares"), request)?;
/// assert_eq!(serde_json::from_str::<Value>(output.as_str()).unwrap(), serde_json::json!([1, 4, 9]));
/// # Ok::<(), ActionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonOutput(String);

impl JsonOutput {
    /// The output `text`, JSON as the action wrote it.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl IntoOutput for JsonOutput {
    fn into_json(self) -> Result<String, ActionError> {
        Ok(self.0)
    }
}
