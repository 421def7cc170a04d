//! Errors of the execution layer.

use crate::spec::SpecError;
use crate::store::StoreError;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The workflow does not fit the plugins (an action no plugin provides).
    #[error(transparent)]
    Spec(SpecError),
    /// The store failed; the run stopped so that no result goes unrecorded.
    #[error("the run stopped because its state could not be saved: {0}")]
    Store(#[from] StoreError),
    /// The run's task was aborted (its runtime shut down).
    #[error("the run's task was aborted before it finished")]
    Aborted,
}
