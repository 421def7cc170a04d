//! `echo`: returns the node's `input` unchanged.
//!
//! Useful as the source of a workflow's data, and to see exactly what a node
//! receives.
//!
//! ```toml
//! [nodes.order]
//! action = "echo"
//! input = { customer = "Ada", amounts = [12.5, 3, 7.25] }
//! ```

use flow_plugin_sdk::serde_json::Value;
use flow_plugin_sdk::{ActionError, Context, Request, export_action};

/// Returns `input` as the output.
pub fn echo(_: &Context, request: Request<Value>) -> Result<Value, ActionError> {
    Ok(request.input)
}

export_action! {
    name: "echo",
    description: "Returns its input unchanged",
    run: echo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::json;

    #[test]
    fn returns_the_input_not_the_deps() {
        let request =
            Request::from_json(r#"{"input": {"a": [1, "x"]}, "deps": {"d": 1}}"#).unwrap();
        let output = echo(&Context::for_tests("echo"), request).unwrap();
        assert_eq!(output, json!({"a": [1, "x"]}));
    }
}
