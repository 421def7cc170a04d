//! The JSON an action returns, as the host accepts and keeps it.
//!
//! Every output crosses one boundary, [`JsonText::parse`], before anything
//! stores or forwards it. Accepted is a JSON document that
//!
//! - is at most the node's `max_output` bytes long (as the action returned
//!   it, before spaces are removed);
//! - nests arrays and objects at most [`MAX_DEPTH`] deep;
//! - has numbers that fit a 64-bit float (integers within 64 bits are kept
//!   exactly; other numbers become the nearest double);
//! - has strings whose escapes are valid Unicode (no lone surrogates).
//!
//! What passes is kept in one canonical compact form (no spaces outside
//! strings, keys in the order the action wrote them), whatever language
//! the action was written in. Anything else fails the attempt with
//! [`FailureKind::Output`](super::FailureKind::Output), since the same
//! input would produce it again.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

mod canonical;

/// Deepest nesting of arrays and objects accepted in an output. The host
/// wraps outputs a few levels deeper when it hands them to dependents or
/// prints them, and common JSON parsers stop at 128 levels.
pub const MAX_DEPTH: usize = 64;

/// Validated JSON text in canonical compact form, cheap to clone: a node's
/// output is held once however many dependents read it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Arc<String>);

/// Why an action's output is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The output is larger than the node's `max_output`.
    #[error(
        "the output is {} but the node's `max_output` is {}; raise `max_output` if the output is meant to be this large",
        bytesize::ByteSize(*size as u64).display().iec(),
        bytesize::ByteSize(*limit as u64).display().iec()
    )]
    TooLarge {
        /// Bytes returned.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Arrays and objects nest too deep.
    #[error("the output nests arrays and objects more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// Not JSON the host accepts.
    #[error("the output is not valid JSON: {0}")]
    Invalid(String),
}

impl JsonText {
    /// Checks an action's output (see the module docs) and returns it in
    /// canonical form.
    pub fn parse(text: &str, max_bytes: usize) -> Result<Self, OutputError> {
        Self::check(Cow::Borrowed(text), max_bytes)
    }

    /// [`JsonText::parse`] of text the caller no longer needs: kept without
    /// a copy when it is canonical already.
    pub fn parse_owned(text: String, max_bytes: usize) -> Result<Self, OutputError> {
        Self::check(Cow::Owned(text), max_bytes)
    }

    fn check(text: Cow<'_, str>, max_bytes: usize) -> Result<Self, OutputError> {
        if text.len() > max_bytes {
            return Err(OutputError::TooLarge {
                size: text.len(),
                limit: max_bytes,
            });
        }
        // What serde_json writes itself (every Rust action's output, and
        // most of what JavaScript's `JSON.stringify` writes) passes in one
        // pass over its bytes; the rest takes the parser's path.
        if canonical::is_canonical(text.as_bytes()) {
            return Ok(Self(Arc::new(text.into_owned())));
        }
        let shape = Shape::of(&text);
        if shape.depth > MAX_DEPTH {
            return Err(OutputError::TooDeep);
        }
        if shape.canonical {
            // Already what the transcoder would write: checked, kept as is.
            serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(invalid)?;
            return Ok(Self(Arc::new(text.into_owned())));
        }
        transcoded(&text).map(|compact| Self(Arc::new(compact)))
    }

    /// JSON text that is known to be valid and compact, such as a value
    /// serialised by serde_json.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(Arc::new(value.to_string()))
    }

    /// The shared buffer itself, to hand on without a copy.
    pub(crate) fn shared(&self) -> Arc<String> {
        self.0.clone()
    }

    /// The list of `items` in order, `null` for a missing one: the output
    /// of a map node, one level deeper than its elements' outputs.
    pub fn list<'a>(items: impl IntoIterator<Item = Option<&'a JsonText>>) -> Self {
        let mut text = String::from("[");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(item.map_or("null", JsonText::as_str));
        }
        text.push(']');
        Self(Arc::new(text))
    }

    /// The object of `fields` in order: the outputs of a sub-workflow by
    /// node id, one level deeper than the outputs.
    pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, &'a JsonText)>) -> Self {
        let mut text = String::from("{");
        for (i, (key, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::Value::from(key).to_string());
            text.push(':');
            text.push_str(value.as_str());
        }
        text.push('}');
        Self(Arc::new(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why serde_json refused an output.
fn invalid(error: impl fmt::Display) -> OutputError {
    OutputError::Invalid(error.to_string())
}

/// `text` in canonical form: read and written again by serde_json.
fn transcoded(text: &str) -> Result<String, OutputError> {
    let mut compact = Vec::with_capacity(text.len());
    let mut reader = serde_json::Deserializer::from_str(text);
    let mut writer = serde_json::Serializer::new(&mut compact);
    serde_transcode::transcode(&mut reader, &mut writer).map_err(invalid)?;
    reader.end().map_err(invalid)?;
    // serde_json writes UTF-8.
    String::from_utf8(compact).map_err(invalid)
}

/// What one pass over an output's bytes tells without parsing it.
#[derive(Debug)]
struct Shape {
    /// The deepest nesting of arrays and objects (brackets inside strings
    /// do not count).
    depth: usize,
    /// Whether the text, if it is valid JSON, is already in canonical form:
    /// no spaces outside strings, only the escapes serde_json writes
    /// itself, and numbers that are integers it writes back digit for digit.
    canonical: bool,
}

impl Shape {
    fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        let (mut depth, mut deepest) = (0usize, 0usize);
        let mut canonical = true;
        let mut i = 0;
        while let Some(&byte) = bytes.get(i) {
            i += 1;
            match byte {
                b'"' => {
                    // To the closing quote, over escapes.
                    loop {
                        // Past the end after a final backslash (`"\`).
                        let rest = bytes.get(i..).unwrap_or_default();
                        let Some(at) = memchr::memchr2(b'"', b'\\', rest) else {
                            // Unterminated: not JSON.
                            i = bytes.len();
                            break;
                        };
                        i += at + 1;
                        if bytes[i - 1] == b'"' {
                            break;
                        }
                        // serde_json writes these escapes itself; others
                        // (`\/`, `\u00e9`) it writes otherwise.
                        canonical &= matches!(
                            bytes.get(i),
                            Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f')
                        );
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b' ' | b'\t' | b'\n' | b'\r' => canonical = false,
                b'-' | b'0'..=b'9' => {
                    let start = i - 1;
                    while bytes.get(i).is_some_and(|b| {
                        matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                    }) {
                        i += 1;
                    }
                    // An integer of up to 18 digits fits 64 bits and is
                    // written back as it is; `-0` becomes `-0.0`.
                    let number = &bytes[start..i];
                    let digits = number.strip_prefix(b"-").unwrap_or(number);
                    canonical &= digits.len() <= 18
                        && digits.iter().all(u8::is_ascii_digit)
                        && !number.starts_with(b"-0");
                }
                _ => {}
            }
        }
        Self {
            depth: deepest,
            canonical,
        }
    }
}

impl Deref for JsonText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonText {
    /// Embeds the text as JSON, without copying it. Text that is somehow
    /// not JSON (a damaged record) is embedded as a string instead, so that
    /// the document around it stays valid.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<&RawValue>(&self.0) {
            Ok(raw) => raw.serialize(serializer),
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self(Arc::new(Box::<str>::from(raw).into_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<String, OutputError> {
        JsonText::parse(text, 1 << 20).map(|json| json.to_string())
    }

    #[test]
    fn outputs_are_kept_compact_in_their_key_order() {
        assert_eq!(
            parse("{ \"b\" : [1, 2.50, \"x y\"],\n  \"a\": null }").unwrap(),
            r#"{"b":[1,2.5,"x y"],"a":null}"#
        );
        assert_eq!(parse(" 7 ").unwrap(), "7");
    }

    #[test]
    fn numbers_keep_every_digit_they_mean() {
        // Read with correct rounding: without it the last digit moves.
        assert_eq!(parse("981751632.8297213").unwrap(), "981751632.8297213");
        assert_eq!(
            parse("[0.1,1e300,-2.2250738585072014e-308]").unwrap(),
            "[0.1,1e+300,-2.2250738585072014e-308]"
        );
    }

    #[test]
    fn what_readers_cannot_read_is_refused() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep), Err(OutputError::TooDeep));
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
        assert!(
            parse("[\"[[[[\"]").is_ok(),
            "brackets in strings do not count"
        );
        assert!(
            matches!(parse("1e400"), Err(OutputError::Invalid(m)) if m.contains("out of range"))
        );
        assert!(
            matches!(parse(r#""\ud800""#), Err(OutputError::Invalid(m)) if m.contains("hex escape"))
        );
        assert!(
            matches!(parse(r#""\udc00 x""#), Err(OutputError::Invalid(m)) if m.contains("surrogate"))
        );
        assert!(parse(r#""\ud83d\ude00""#).is_ok(), "a pair is a character");
        assert!(matches!(parse("{} {}"), Err(OutputError::Invalid(m)) if m.contains("trailing")));
        assert!(matches!(parse("nope"), Err(OutputError::Invalid(_))));
    }

    #[test]
    fn text_already_canonical_is_kept_as_the_transcoder_would_write_it() {
        for (text, canonical) in [
            (r#"{"a":[1,-2,true,false,null],"b":{"c":"d"}}"#, true),
            (r#"["\"\\\n\r\t\b\f","é😀",123456789012345678]"#, true),
            ("-0", false),
            ("[-0]", false),
            ("1234567890123456789", false),
            ("18446744073709551616", false),
            ("1.0", false),
            ("1e2", false),
            (r#""\/""#, false),
            (r#""\u00e9""#, false),
            (r#""\u001f""#, false),
            ("[1, 2]", false),
        ] {
            assert_eq!(Shape::of(text).canonical, canonical, "{text}");
            assert_eq!(
                canonical::is_canonical(text.as_bytes()),
                canonical,
                "{text}"
            );
            assert_eq!(parse(text).unwrap(), transcoded(text).unwrap(), "{text}");
        }
        // Refused on either path.
        for bad in [
            "\"a\u{1}b\"",
            "[1,]",
            "{\"a\"}",
            "01",
            "[1]x",
            "\"\\x\"",
            "\"\\",
            "{\"a\":\"\\",
            "nul",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn the_fast_path_writes_what_the_transcoder_writes(text in json_text()) {
            proptest::prop_assert_eq!(parse(&text).ok(), transcoded(&text).ok(), "{}", text);
        }

        #[test]
        fn text_cut_anywhere_is_refused_as_the_transcoder_refuses_it(
            text in json_text(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let mut end = cut.index(text.len() + 1);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let text = &text[..end];
            proptest::prop_assert_eq!(parse(text).ok(), transcoded(text).ok(), "{}", text);
        }
    }

    /// JSON text with the spellings that have more than one form: numbers
    /// with fractions, exponents, signs and many digits, escapes of every
    /// kind, spaces between tokens.
    pub(super) fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            1 => Just("null".to_string()),
            1 => Just("true".to_string()),
            3 => "-?(0|[1-9][0-9]{0,20})",
            3 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?",
            3 => r#""([a-z é]|\\["\\/bfnrt]|\\u00[0-9a-fA-F]{2})*""#,
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            // Mostly none, so that many documents take the fast path.
            let space = || prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n")];
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..6), space())
                    .prop_map(|(items, space)| format!("[{}]", items.join(&format!(",{space}")))),
                prop::collection::vec(("[a-z]{0,3}", space(), inner), 0..6).prop_map(|fields| {
                    let fields: Vec<String> = fields
                        .into_iter()
                        .map(|(key, space, value)| format!("\"{key}\":{space}{value}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    #[test]
    fn outputs_over_the_limit_are_refused_with_the_option_named() {
        let error = JsonText::parse("[1,2,3]", 4).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the output is 7 B but the node's `max_output` is 4 B; raise `max_output` if the output is meant to be this large"
        );
    }

    #[test]
    fn stored_text_is_embedded_as_it_is() {
        let json = JsonText::parse(r#"{"a":[1]}"#, 100).unwrap();
        let document = serde_json::to_string(&serde_json::json!({ "x": 1 })).unwrap();
        assert_eq!(document, r#"{"x":1}"#);
        assert_eq!(serde_json::to_string(&json).unwrap(), r#"{"a":[1]}"#);
        let back: JsonText = serde_json::from_str(r#"{"a":[1]}"#).unwrap();
        assert_eq!(back, json);
    }
}
