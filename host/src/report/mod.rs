//! What runs produce and how they stand: the vocabulary every other layer
//! shares.
//!
//! This module is a leaf: it imports no other module of the crate. The
//! engine ([`crate::exec`]) fills these types in, the store
//! ([`crate::store`]) keeps them, and observers ([`crate::observe`]) and
//! the command line read them.

mod failure;
mod http;
mod json;
mod run;
mod status;

pub use failure::{Failure, FailureKind, MAX_ERROR_TEXT};
pub use http::HttpStats;
pub use json::{JsonText, MAX_DEPTH, OutputError};
pub use run::{NodeReport, RunReport};
pub use status::{NodeStatus, RunStatus, Timestamp};
