//! Benchmark plugin `cpu`: SHA-256 over `bytes` bytes of generated data.
//!
//! The same [`work`] function runs natively in the benchmark, to compare
//! WebAssembly with native code on the same portable algorithm: the
//! software SHA-256 of the `sha2` crate, without SHA or SIMD instructions on
//! either side (a hardware path would compare the CPU, not the engine).

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::{ActionError, Context, Request, export_action};
use sha2_soft::{Digest, Sha256};

#[derive(Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde")]
struct Params {
    bytes: usize,
}

/// SHA-256 (hex) of `bytes` bytes of xorshift output, hashed in 64 KiB
/// blocks.
pub fn work(bytes: usize) -> String {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len());
        for chunk in block[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        hasher.update(&block[..n]);
        left -= n;
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cpu(_: &Context, request: Request<Params>) -> Result<String, ActionError> {
    Ok(work(request.input.bytes))
}

export_action! {
    name: "cpu",
    description: "SHA-256 over generated data",
    run: cpu,
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        use super::{Digest, Sha256};
        let digest: String = Sha256::digest(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(super::work(100).len(), 64);
    }
}
