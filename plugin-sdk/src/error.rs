use std::fmt;

/// Why an attempt failed, and whether the host may try again.
///
/// ```
/// use flow_plugin_sdk::ActionError;
///
/// let busy = ActionError::retryable("the service answered 503");
/// assert!(busy.is_retryable());
/// let bad = ActionError::fatal("`values` must be an array");
/// assert_eq!(bad.message(), "`values` must be an array");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    retryable: bool,
    message: String,
}

impl ActionError {
    /// A failure that may pass: the host runs the node again within its
    /// retry policy.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that will repeat whatever happens: the node fails at once.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }

    /// Whether the host may retry the node after this error.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message shown to the workflow's user.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retryable { "retryable" } else { "fatal" };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for ActionError {}

impl From<ActionError> for crate::__private::ActionError {
    fn from(error: ActionError) -> Self {
        if error.retryable {
            Self::Retryable(error.message)
        } else {
            Self::Fatal(error.message)
        }
    }
}
