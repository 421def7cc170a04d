//! What an attempt did over the network.

use serde::{Deserialize, Serialize};

/// What an attempt did over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpStats {
    /// Requests sent.
    pub requests: u64,
    /// Requests refused before any connection.
    pub refused: u64,
    /// Bytes of request bodies sent.
    pub bytes_out: u64,
    /// Bytes of response bodies received.
    pub bytes_in: u64,
}
