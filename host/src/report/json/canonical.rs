//! The one-pass check of text that is JSON exactly as serde_json writes it
//! compactly: what almost every action returns.
//!
//! It only ever says yes to text that serde_json reads and writes back
//! byte for byte, within [`MAX_DEPTH`]; anything else (spaces, fractions,
//! `\u` escapes, errors of every kind) gets a no and takes the full path,
//! which decides and explains. So it need not know every rule of JSON,
//! only never accept what the full path would change or refuse.

use super::MAX_DEPTH;

/// Whether `text` is one compact JSON value in serde_json's own spelling,
/// nested at most [`MAX_DEPTH`] deep.
pub(super) fn is_canonical(text: &[u8]) -> bool {
    let mut at = 0;
    // Bit `d` is set when the container at depth `d + 1` is an object.
    let mut objects: u64 = 0;
    let mut depth = 0;
    loop {
        // A value starts at `at`.
        if let Some(&open @ (b'{' | b'[')) = text.get(at) {
            if depth == MAX_DEPTH {
                return false;
            }
            let object = open == b'{';
            objects = if object {
                objects | 1 << depth
            } else {
                objects & !(1 << depth)
            };
            depth += 1;
            at += 1;
            let close = if object { b'}' } else { b']' };
            if text.get(at) != Some(&close) {
                if object {
                    let Some(next) = key(text, at) else {
                        return false;
                    };
                    at = next;
                }
                continue;
            }
            // `{}` or `[]`: the container opened just now closes.
            depth -= 1;
            at += 1;
        } else {
            let Some(next) = scalar(text, at) else {
                return false;
            };
            at = next;
        }
        // After a value: close containers until one goes on.
        loop {
            if depth == 0 {
                return at == text.len();
            }
            let object = objects & (1 << (depth - 1)) != 0;
            match text.get(at) {
                Some(b',') if object => match key(text, at + 1) {
                    Some(next) => {
                        at = next;
                        break;
                    }
                    None => return false,
                },
                Some(b',') => {
                    at += 1;
                    break;
                }
                Some(b'}') if object => {
                    depth -= 1;
                    at += 1;
                }
                Some(b']') if !object => {
                    depth -= 1;
                    at += 1;
                }
                _ => return false,
            }
        }
    }
}

/// Past the string, integer, `true`, `false` or `null` starting at `at`.
fn scalar(text: &[u8], at: usize) -> Option<usize> {
    let rest = &text[at..];
    match rest.first()? {
        b'"' => string(text, at),
        b'-' | b'0'..=b'9' => integer(text, at),
        _ => ["true", "false", "null"]
            .iter()
            .find(|word| rest.starts_with(word.as_bytes()))
            .map(|word| at + word.len()),
    }
}

/// Past `"key":` starting at `at`.
fn key(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let next = string(text, at)?;
    (text.get(next) == Some(&b':')).then_some(next + 1)
}

/// Past the string whose opening quote is at `at`: no control characters,
/// and only the escapes serde_json writes with a backslash and one letter.
fn string(text: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match *text.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match text.get(i + 1)? {
                b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => i += 2,
                _ => return None,
            },
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// Past the integer at `at` that serde_json reads into 64 bits and writes
/// back digit for digit: at most 18 digits, no leading zero, not `-0`,
/// and no fraction or exponent after it.
fn integer(text: &[u8], at: usize) -> Option<usize> {
    let negative = text[at] == b'-';
    let start = at + usize::from(negative);
    let digits = text[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let leading_zero = text.get(start) == Some(&b'0');
    if digits == 0 || digits > 18 || (leading_zero && (digits > 1 || negative)) {
        return None;
    }
    let end = start + digits;
    match text.get(end) {
        Some(b'.' | b'e' | b'E') => None,
        _ => Some(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_serde_json_writes_passes() {
        for text in [
            r#"{"a":[1,-2,true,false,null],"b":{"c":"d"}}"#,
            r#"["\"\\\n\r\t\b\f","é😀",123456789012345678,-99,0]"#,
            "[]",
            "{}",
            r#"{"a":{},"b":[],"c":[{}],"d":[[]]}"#,
            "\"\"",
            "0",
            "true",
        ] {
            assert!(is_canonical(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn anything_else_takes_the_full_path() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let deepest = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(is_canonical(deepest.as_bytes()));
        for text in [
            "",
            " 1",
            "1 ",
            "[1, 2]",
            "{\"a\": 1}",
            "-0",
            "01",
            "-",
            "1.5",
            "1e3",
            "1234567890123456789",
            r#""\u00e9""#,
            r#""\/""#,
            "\"a\u{1}b\"",
            "\"open",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "{\"a\":1,}",
            "[1}",
            "{\"a\":1]",
            "[1]x",
            "[1][2]",
            "tru",
            "nul",
            "True",
            &deep,
        ] {
            assert!(!is_canonical(text.as_bytes()), "{text:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]
        /// Whatever it accepts, serde_json reads and writes back unchanged.
        #[test]
        fn it_accepts_only_what_the_transcoder_keeps(
            text in "[\\[\\]{}:,\"\\\\ntrufalse0-9.eE+ a-]{0,24}"
        ) {
            if is_canonical(text.as_bytes()) {
                proptest::prop_assert_eq!(super::super::transcoded(&text).ok(), Some(text.clone()));
            }
        }

        /// Nor what one changed byte makes of JSON text, canonical or not.
        #[test]
        fn it_accepts_no_damaged_text_the_transcoder_would_change(
            text in super::super::tests::json_text(),
            place in 0usize..1000,
            byte in proptest::sample::select(b"[]{}:,\"\\ 0123456789-.eEtfnu/x".to_vec()),
        ) {
            let mut damaged = text.into_bytes();
            if !damaged.is_empty() {
                let place = place % damaged.len();
                damaged[place] = byte;
            }
            if let Ok(damaged) = String::from_utf8(damaged)
                && is_canonical(damaged.as_bytes())
            {
                proptest::prop_assert_eq!(super::super::transcoded(&damaged).ok(), Some(damaged.clone()));
            }
        }
    }
}
