//! A node's value in tree `nodes`: `[record, attempts, spill]`, its record
//! and its attempts in one entry.
//!
//! sled reads a page at a time, and a page holds at most 16 entries: a
//! run's records in half as many entries are read with about half as many
//! reads. But a value is rewritten whole on every change of its node, so it
//! must not grow with each retry: once the attempts kept inline weigh
//! [`INLINE_ATTEMPTS`], the next new attempt's number becomes the node's
//! `spill`, and that attempt and every new one numbered from it on are
//! kept in entries of their own (`run id, 0, node id, 0, number`), right
//! after the node's in key order. The spill never changes once set, and an
//! attempt stays where it was first written, so it lives in one place;
//! only attempts written out of order can leave an inline one numbered
//! past the spill, and readers put them in order.
//!
//! Databases of schema version 5 and older hold the record alone, as a
//! JSON object, with every attempt in an entry of its own: they are read
//! as `[record, [], 1]`, as they are, without rewriting.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::decode;
use crate::store::{AttemptRecord, NodeRecord, StoreError};

/// Attempts stay in their node's value while those already there weigh
/// less than this (see [`weight`]: their text, before JSON escapes it);
/// at most about one attempt's worth more, then.
pub(super) const INLINE_ATTEMPTS: usize = 64 << 10;

/// The number of the first attempt kept in an entry of its own, if any.
pub(super) type Spill = Option<u32>;

/// A node's value, each part decoded as `N` and `A` (a type, or
/// [`IgnoredAny`] to pass over it).
#[derive(Deserialize)]
struct Value<N, A>(N, A, Spill);

/// Decodes a node's value, of either form, as its record and attempts,
/// each as wanted.
fn parts<N, A>(key: &[u8], bytes: &[u8]) -> Result<(N, A, Spill), StoreError>
where
    N: DeserializeOwned,
    A: DeserializeOwned + Default,
{
    if bytes.first() == Some(&b'{') {
        // A record written by version 5 or older: its attempts are apart.
        return Ok((decode(key, bytes)?, A::default(), Some(1)));
    }
    let Value(node, attempts, spill) = decode(key, bytes)?;
    Ok((node, attempts, spill))
}

/// A node's record and the attempts kept with it.
pub(super) fn node_and_attempts(
    key: &[u8],
    bytes: &[u8],
) -> Result<(NodeRecord, Vec<AttemptRecord>, Spill), StoreError> {
    parts(key, bytes)
}

/// A node's record alone.
pub(super) fn node(key: &[u8], bytes: &[u8]) -> Result<NodeRecord, StoreError> {
    let (node, IgnoredAny, _) = parts(key, bytes)?;
    Ok(node)
}

/// The attempts kept with a node, and its spill.
pub(super) fn attempts(
    key: &[u8],
    bytes: &[u8],
) -> Result<(Vec<AttemptRecord>, Spill), StoreError> {
    let (IgnoredAny, attempts, spill) = parts(key, bytes)?;
    Ok((attempts, spill))
}

/// Adds attempts kept apart to `attempts` (in order by number), keeping
/// them in order: attempts written out of order may leave an inline one
/// past the spill.
pub(super) fn append(
    attempts: &mut Vec<AttemptRecord>,
    apart: impl IntoIterator<Item = AttemptRecord>,
) {
    let joint = attempts.len().saturating_sub(1);
    attempts.extend(apart);
    if !attempts[joint..].is_sorted_by_key(|attempt| attempt.number) {
        attempts.sort_by_key(|attempt| attempt.number);
    }
}

/// A node's value, written into a buffer of about its size at once: a
/// large output is not copied from buffer to bigger buffer as it grows.
pub(super) fn encode(
    node: &NodeRecord,
    attempts: &[AttemptRecord],
    spill: Spill,
) -> Result<Vec<u8>, StoreError> {
    let output = node.output.as_ref().map_or(0, |output| output.len());
    let attempts_size: usize = attempts.iter().map(weight).sum();
    let mut bytes = Vec::with_capacity(output + attempts_size + 512);
    serde_json::to_writer(&mut bytes, &(node, attempts, spill)).map_err(StoreError::io)?;
    Ok(bytes)
}

/// About how many bytes an attempt takes in a value: its texts, and room
/// for the rest.
fn weight(attempt: &AttemptRecord) -> usize {
    let logs: usize = attempt.logs.iter().map(|line| line.text.len() + 24).sum();
    let error = attempt.error.as_ref().map_or(0, |e| e.message.len());
    192 + logs + error
}

/// Where a node's attempts go when `new` ones (sorted by number) are
/// written over the `inline` ones and `spill` stored: the attempts its
/// value keeps, its spill, and the attempts to write in entries of their
/// own. An attempt stays where it was first put.
pub(super) fn place<'a>(
    mut inline: Vec<AttemptRecord>,
    mut spill: Spill,
    new: &[&'a AttemptRecord],
) -> (Vec<AttemptRecord>, Spill, Vec<&'a AttemptRecord>) {
    let mut apart = Vec::new();
    let mut inline_weight: usize = inline.iter().map(weight).sum();
    for &attempt in new {
        if let Some(slot) = inline.iter_mut().find(|a| a.number == attempt.number) {
            inline_weight = inline_weight - weight(slot) + weight(attempt);
            *slot = attempt.clone();
        } else if spill.is_some_and(|first| attempt.number >= first) {
            apart.push(attempt);
        } else if spill.is_none() && inline_weight >= INLINE_ATTEMPTS {
            spill = Some(attempt.number);
            apart.push(attempt);
        } else {
            inline_weight += weight(attempt);
            inline.push(attempt.clone());
        }
    }
    inline.sort_by_key(|attempt| attempt.number);
    (inline, spill, apart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{attempt_record, node_record, numbers};
    use crate::store::{GuestLine, LineKind};

    fn heavy(number: u32) -> AttemptRecord {
        let mut attempt = attempt_record(number);
        attempt.logs = vec![GuestLine {
            kind: LineKind::Stdout,
            text: "x".repeat(INLINE_ATTEMPTS / 2),
        }];
        attempt
    }

    #[test]
    fn a_value_round_trips_in_parts() {
        let node = node_record("n", 3, crate::report::NodeStatus::Succeeded);
        let attempts = vec![attempt_record(1), attempt_record(2)];
        let bytes = encode(&node, &attempts, Some(3)).unwrap();
        assert_eq!(bytes[0], b'[');
        let (read, kept, spill) = node_and_attempts(b"k", &bytes).unwrap();
        assert_eq!(
            (read, kept, spill),
            (node.clone(), attempts.clone(), Some(3))
        );
        assert_eq!(super::node(b"k", &bytes).unwrap(), node);
        assert_eq!(super::attempts(b"k", &bytes).unwrap(), (attempts, Some(3)));
    }

    #[test]
    fn a_record_of_version_5_has_its_attempts_apart() {
        let node = node_record("n", 0, crate::report::NodeStatus::Failed);
        let bytes = serde_json::to_vec(&node).unwrap();
        assert_eq!(
            node_and_attempts(b"k", &bytes).unwrap(),
            (node, Vec::new(), Some(1))
        );
    }

    #[test]
    fn a_damaged_value_names_its_key() {
        let error = super::node(b"01A\0n", b"[{\"node_id\":").unwrap_err();
        assert!(error.to_string().contains("01A/n"), "{error}");
    }

    #[test]
    fn attempts_stay_inline_until_they_weigh_enough_then_spill_for_good() {
        let (one, two, three, four) = (heavy(1), heavy(2), heavy(3), heavy(4));
        let (inline, spill, apart) = place(Vec::new(), None, &[&one, &two]);
        assert_eq!(
            (numbers(&inline), spill, apart.len()),
            (vec![1, 2], None, 0)
        );
        // Two weigh enough: the third spills, and so does every later one.
        let (inline, spill, apart) = place(inline, spill, &[&three]);
        assert_eq!((numbers(&inline), spill), (vec![1, 2], Some(3)));
        assert_eq!(apart[0].number, 3);
        let (inline, spill, apart) = place(inline, spill, &[&three, &four]);
        assert_eq!((numbers(&inline), spill), (vec![1, 2], Some(3)));
        assert_eq!(apart.iter().map(|a| a.number).collect::<Vec<_>>(), [3, 4]);
        // An attempt kept inline is replaced there, even past the weight.
        let mut again = heavy(2);
        again.error = Some(crate::report::Failure::lost());
        let (inline, _, apart) = place(inline, spill, &[&again]);
        assert!(apart.is_empty());
        assert_eq!(inline[1].error, again.error);
    }

    #[test]
    fn an_attempt_inline_past_the_spill_stays_inline() {
        // Written out of order: 10 went inline before the spill was set.
        let (one, ten) = (attempt_record(1), attempt_record(10));
        let (two, three, four) = (heavy(2), heavy(3), heavy(4));
        let (inline, spill, _) = place(Vec::new(), None, &[&one, &ten, &two, &three]);
        let (inline, spill, apart) = place(inline, spill, &[&four]);
        assert_eq!((numbers(&inline), spill), (vec![1, 2, 3, 10], Some(4)));
        assert_eq!(apart.len(), 1);
        let mut again = attempt_record(10);
        again.error = Some(crate::report::Failure::lost());
        let (inline, _, apart) = place(inline, spill, &[&again]);
        assert!(apart.is_empty(), "not written twice");
        assert_eq!(inline[3], again);
    }

    #[test]
    fn light_attempts_written_out_of_order_are_kept_in_order() {
        let (one, two, ten) = (attempt_record(1), attempt_record(2), attempt_record(10));
        let (inline, spill, _) = place(Vec::new(), None, &[&two]);
        let (inline, spill, _) = place(inline, spill, &[&ten]);
        let (inline, spill, apart) = place(inline, spill, &[&one]);
        assert_eq!(
            (numbers(&inline), spill, apart.len()),
            (vec![1, 2, 10], None, 0)
        );
    }
}
