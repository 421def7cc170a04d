//! The file format of the function cache: a *pack* holds the functions
//! one compilation added, with an index in front so that a reader learns
//! every key without reading the code.
//!
//! ```text
//! "flow-fn" 1                   magic and version (8 bytes)
//! count: u32                    then, count times:
//!   key length: u16, key, offset of the value: u64, its length: u32
//! values                        each where its index entry says
//! ```
//!
//! Integers are little-endian. A pack is written to a temporary name and
//! renamed, so a reader sees all of it or none.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Marks a pack of this format.
const MAGIC: &[u8; 8] = b"flow-fn\x01";

/// Where a value is in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub offset: u64,
    pub len: u32,
}

/// Why a file is not a pack that can be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum PackError {
    /// Reading it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not this format, or cut short.
    #[error("not a pack of compiled functions, or damaged")]
    Damaged,
    /// A pack of another version of this format.
    #[error("a pack of compiled functions in another format")]
    OtherVersion,
}

/// Reads the index of the pack in `file`: each key and where its value is.
pub(super) fn read_index(file: &File) -> Result<Vec<(Vec<u8>, Span)>, PackError> {
    let size = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0; 8];
    let damaged = |error: std::io::Error| match error.kind() {
        std::io::ErrorKind::UnexpectedEof => PackError::Damaged,
        _ => PackError::Io(error),
    };
    reader.read_exact(&mut magic).map_err(damaged)?;
    if &magic != MAGIC {
        let ours = magic[..7] == MAGIC[..7];
        return Err(if ours {
            PackError::OtherVersion
        } else {
            PackError::Damaged
        });
    }
    let count = u32::from_le_bytes(array(&mut reader).map_err(damaged)?);
    // Each entry takes at least 14 bytes: a count no file of this size can
    // hold is damage, not a reason to reserve memory.
    if u64::from(count) * 14 > size {
        return Err(PackError::Damaged);
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let key_len = u16::from_le_bytes(array(&mut reader).map_err(damaged)?);
        let mut key = vec![0; usize::from(key_len)];
        reader.read_exact(&mut key).map_err(damaged)?;
        let offset = u64::from_le_bytes(array(&mut reader).map_err(damaged)?);
        let len = u32::from_le_bytes(array(&mut reader).map_err(damaged)?);
        if offset
            .checked_add(u64::from(len))
            .is_none_or(|end| end > size)
        {
            return Err(PackError::Damaged);
        }
        entries.push((key, Span { offset, len }));
    }
    // Values begin where the index ends.
    let values = reader.stream_position()?;
    if entries.iter().any(|(_, span)| span.offset < values) {
        return Err(PackError::Damaged);
    }
    Ok(entries)
}

/// Reads the value at `span` of the pack in `file`.
pub(super) fn read_value(file: &File, span: Span) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;

    let mut value = vec![0; span.len as usize];
    file.read_exact_at(&mut value, span.offset)?;
    Ok(value)
}

/// Writes `entries` as a new pack in `dir`, and returns its path and where
/// each value went, in the order given. The name begins with the time, so
/// that packs sort in the order they were written.
pub(super) fn write(
    dir: &Path,
    entries: &[(Vec<u8>, Vec<u8>)],
) -> std::io::Result<(PathBuf, Vec<Span>)> {
    let index_len: u64 = entries
        .iter()
        .map(|(key, _)| 2 + key.len() as u64 + 8 + 4)
        .sum();
    let mut offset = MAGIC.len() as u64 + 4 + index_len;
    let mut spans = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let too_big = || std::io::Error::other("a compiled function too large for a pack");
        let len = u32::try_from(value.len()).map_err(|_| too_big())?;
        u16::try_from(key.len()).map_err(|_| too_big())?;
        spans.push(Span { offset, len });
        offset += u64::from(len);
    }
    let count = u32::try_from(entries.len()).map_err(std::io::Error::other)?;

    let temp = tempfile::Builder::new().prefix(".pack-").tempfile_in(dir)?;
    let mut out = BufWriter::new(temp);
    out.write_all(MAGIC)?;
    out.write_all(&count.to_le_bytes())?;
    for ((key, _), span) in entries.iter().zip(&spans) {
        out.write_all(&(key.len() as u16).to_le_bytes())?;
        out.write_all(key)?;
        out.write_all(&span.offset.to_le_bytes())?;
        out.write_all(&span.len.to_le_bytes())?;
    }
    for (_, value) in entries {
        out.write_all(value)?;
    }
    let temp = out.into_inner().map_err(|error| error.into_error())?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let path = dir.join(format!("{nanos:016x}-{:08x}.pack", fastrand::u32(..)));
    temp.persist(&path).map_err(|error| error.error)?;
    Ok((path, spans))
}

fn array<const N: usize>(reader: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut bytes = [0; N];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (b"first".to_vec(), b"one".to_vec()),
            (vec![7; 32], vec![]),
            (b"third".to_vec(), vec![9; 1000]),
        ]
    }

    #[test]
    fn a_pack_gives_back_every_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let (path, spans) = write(dir.path(), &entries()).unwrap();
        assert_eq!(path.extension().unwrap(), "pack");
        let file = File::open(&path).unwrap();
        let index = read_index(&file).unwrap();
        assert_eq!(
            index.iter().map(|(_, span)| *span).collect::<Vec<_>>(),
            spans
        );
        for ((key, value), (read_key, span)) in entries().iter().zip(&index) {
            assert_eq!(key, read_key);
            assert_eq!(&read_value(&file, *span).unwrap(), value);
        }
        // Only the pack is left: nothing under a temporary name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_or_cut_pack_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write(dir.path(), &entries()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let refused = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            matches!(
                read_index(&File::open(&path).unwrap()),
                Err(PackError::Damaged)
            )
        };
        assert!(refused(b"not a function"));
        let mut later = bytes.clone();
        later[7] = 2;
        std::fs::write(&path, &later).unwrap();
        assert!(matches!(
            read_index(&File::open(&path).unwrap()),
            Err(PackError::OtherVersion)
        ));
        assert!(refused(&bytes[..20]), "cut inside the index");
        assert!(refused(&bytes[..bytes.len() - 1]), "a value cut short");
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(refused(&huge), "a count no file of this size holds");
        let mut inside = bytes.clone();
        // The first entry's offset (after magic, count, key length, key).
        inside[8 + 4 + 2 + 5..][..8].copy_from_slice(&0u64.to_le_bytes());
        assert!(refused(&inside), "a value inside the index");
        assert!(!refused(&bytes));
    }
}
