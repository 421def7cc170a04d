//! Secrets the workflow grants the node.

use crate::ActionError;

/// The secret `name`, as the node sees it: its value, or with
/// `secret_mode = "placeholder"` an opaque token that the host replaces by
/// the value in the headers of requests the node may send.
///
/// A secret the node is not granted is a fatal error that says how to
/// grant it. The host replaces every secret value by `***` in what the
/// plugin logs, prints, returns or fails with.
///
/// ```no_run
/// use flow_plugin_sdk::{http, secret, ActionError};
/// # fn call() -> Result<http::Response, ActionError> {
/// let token = secret("API_TOKEN")?;
/// let response = http::request("GET", "https://api.example.com/v1/me")
///     .header("authorization", &format!("Bearer {token}"))
///     .send()?;
/// # Ok(response) }
/// ```
pub fn secret(name: &str) -> Result<String, ActionError> {
    std::env::var(name).map_err(|_| {
        ActionError::fatal(format!(
            "the secret {name} is not granted to this node: add secrets = [\"{name}\"] to its table"
        ))
    })
}
