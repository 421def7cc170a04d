//! Option values as the workflow file writes them: durations, sizes, fuel.
//!
//! Each type checks its value while it is deserialised, so a bad value is
//! reported by the TOML parser with its exact location; the command line's
//! flags go through the same types.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{Concurrency, Durability, Schedule};

/// Smallest memory limit: one WebAssembly page.
pub const MIN_MEMORY: u64 = 64 * 1024;

/// Parses a size: bytes, or a number with a unit (`64MiB`, `1GB`).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let bytes = text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|_| {
            format!("invalid size \"{text}\"; write e.g. \"512KiB\", \"64MiB\", \"1GiB\"")
        })?
        .as_u64();
    usize::try_from(bytes).map_err(|_| "the size is too large for this machine".to_string())
}

/// The longest duration any option takes: 100 years. Longer ones are
/// refused, as a clock cannot count that far past now.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// Parses a duration with a unit (`500ms`, `30s`, `2m`) of at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| {
        format!("invalid duration \"{text}\" ({error}); write a number and a unit, e.g. \"500ms\", \"30s\", \"2m\"")
    })?;
    if duration > MAX_DURATION {
        return Err(format!(
            "duration \"{text}\" is longer than 100 years, the longest flow accepts"
        ));
    }
    Ok(duration)
}

/// Parses a duration as [`parse_duration`] does, of more than zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("the duration must be more than zero".into()),
        duration => Ok(duration),
    }
}

fn memory_limit(bytes: usize) -> Result<usize, String> {
    if (bytes as u64) < MIN_MEMORY {
        return Err(format!(
            "{bytes} bytes is less than one WebAssembly page; the smallest limit is 64KiB"
        ));
    }
    Ok(bytes)
}

/// A duration with a unit: `"250ms"`, `"30s"`, `"2m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub Duration);

/// A duration of more than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositiveDuration(pub Duration);

/// A memory limit in bytes, at least a WebAssembly page: an integer or a
/// string with a unit (`"64MiB"`, `"1GB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory(pub usize);

/// A size in bytes of at least one: an integer or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub usize);

/// Fuel per attempt: a positive integer or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fuel(pub Option<u64>);

/// A fraction from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fraction(pub f64);

/// One directory or a list of them: `"plugins"` or `["mine", "shared"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchPath(pub Vec<String>);

/// A factor of at least 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Factor(pub f64);

fn duration<E: de::Error>(text: &str) -> Result<Duration, E> {
    parse_duration(text).map_err(E::custom)
}

macro_rules! visitor {
    ($ty:ident, $expecting:literal, { $($arms:tt)* }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    $($arms)*
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

fn unsigned<E: de::Error>(n: i64, expecting: &dyn de::Expected) -> Result<u64, E> {
    u64::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Signed(n), expecting))
}

visitor!(HumanDuration, "a duration such as \"500ms\" or \"30s\"", {
    fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
        duration(text).map(HumanDuration)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<HumanDuration, E> {
        Err(E::custom(format!(
            "a duration needs a unit: write \"{n}s\" or \"{n}ms\""
        )))
    }
});

visitor!(
    PositiveDuration,
    "a duration such as \"500ms\" or \"30s\"",
    {
        fn visit_str<E: de::Error>(self, text: &str) -> Result<PositiveDuration, E> {
            parse_positive_duration(text)
                .map(PositiveDuration)
                .map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<PositiveDuration, E> {
            Err(E::custom(format!(
                "a duration needs a unit: write \"{n}s\" or \"{n}ms\""
            )))
        }
    }
);

visitor!(Memory, "a size such as \"64MiB\" or a number of bytes", {
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Memory, E> {
        let bytes = usize::try_from(unsigned(n, &self)?).map_err(E::custom)?;
        memory_limit(bytes).map(Memory).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Memory, E> {
        parse_size(text)
            .and_then(memory_limit)
            .map(Memory)
            .map_err(E::custom)
    }
});

visitor!(Size, "a size such as \"16MiB\" or a number of bytes", {
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
        match usize::try_from(unsigned(n, &self)?) {
            Ok(0) => Err(E::custom("the size must be at least one byte")),
            Ok(bytes) => Ok(Size(bytes)),
            Err(error) => Err(E::custom(error)),
        }
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
        match parse_size(text).map_err(E::custom)? {
            0 => Err(E::custom("the size must be at least one byte")),
            bytes => Ok(Size(bytes)),
        }
    }
});

visitor!(Fuel, "a positive integer or \"unlimited\"", {
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Fuel, E> {
        match unsigned(n, &self)? {
            0 => Err(E::invalid_value(de::Unexpected::Signed(0), &self)),
            fuel => Ok(Fuel(Some(fuel))),
        }
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Fuel, E> {
        match text {
            "unlimited" => Ok(Fuel(None)),
            _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
        }
    }
});

visitor!(Fraction, "a number from 0 to 1", {
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Fraction, E> {
        if (0.0..=1.0).contains(&x) {
            Ok(Fraction(x))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(x), &self))
        }
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Fraction, E> {
        self.visit_f64(n as f64)
    }
});

visitor!(Factor, "a number of at least 1", {
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Factor, E> {
        if x >= 1.0 && x.is_finite() {
            Ok(Factor(x))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(x), &self))
        }
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Factor, E> {
        self.visit_f64(n as f64)
    }
});

visitor!(SearchPath, "a directory or a list of directories", {
    fn visit_str<E: de::Error>(self, text: &str) -> Result<SearchPath, E> {
        Ok(SearchPath(vec![text.to_string()]))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<SearchPath, A::Error> {
        let mut dirs = Vec::new();
        while let Some(dir) = seq.next_element::<String>()? {
            dirs.push(dir);
        }
        if dirs.is_empty() {
            return Err(de::Error::custom("the list of plugin directories is empty"));
        }
        Ok(SearchPath(dirs))
    }
});

/// A log filter: a level or tracing directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFilter(pub String);

visitor!(LogFilter, "a log level or filter directives", {
    fn visit_str<E: de::Error>(self, text: &str) -> Result<LogFilter, E> {
        match tracing_subscriber::EnvFilter::try_new(text) {
            Ok(_) => Ok(LogFilter(text.to_string())),
            Err(error) => Err(E::custom(format!(
                "invalid log filter: {error}; use a level (error, warn, info, debug, trace) or \
                 directives such as \"warn,flow::plugin=debug\""
            ))),
        }
    }
});

visitor!(Concurrency, "a positive integer or \"auto\"", {
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Concurrency, E> {
        match usize::try_from(n) {
            Ok(n) if n >= 1 => Ok(Concurrency::Fixed(n)),
            _ => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
        }
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Concurrency, E> {
        text.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
    }
});

visitor!(Durability, "\"strict\" or \"batched\"", {
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Durability, E> {
        text.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
    }
});

visitor!(Schedule, "\"eager\" or \"levels\"", {
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Schedule, E> {
        text.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, String> {
        #[derive(Deserialize)]
        struct Wrap<T> {
            v: T,
        }
        toml::from_str::<Wrap<T>>(&format!("v = {value}"))
            .map(|w| w.v)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(
            parse::<HumanDuration>("\"250ms\"").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(parse::<HumanDuration>("\"0s\"").unwrap().0, Duration::ZERO);
        assert_eq!(
            parse::<HumanDuration>("30").unwrap_err(),
            "a duration needs a unit: write \"30s\" or \"30ms\""
        );
        assert!(
            parse::<HumanDuration>("\"soon\"")
                .unwrap_err()
                .starts_with("invalid duration \"soon\"")
        );
        assert_eq!(
            parse::<PositiveDuration>("\"0s\"").unwrap_err(),
            "the duration must be more than zero"
        );
        // No clock counts this far past now: refused, not a crash later.
        assert_eq!(parse::<HumanDuration>("\"100y\"").unwrap().0, MAX_DURATION);
        assert!(
            parse::<PositiveDuration>("\"10000000000000000000s\"")
                .unwrap_err()
                .contains("longer than 100 years")
        );
        assert!(
            parse_duration("101y")
                .unwrap_err()
                .contains("longer than 100 years")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse::<Memory>("\"64MiB\"").unwrap().0, 64 << 20);
        assert_eq!(parse::<Memory>("\"1 GB\"").unwrap().0, 1_000_000_000);
        assert_eq!(parse::<Memory>("1048576").unwrap().0, 1 << 20);
        assert!(
            parse::<Memory>("\"12 parsecs\"")
                .unwrap_err()
                .starts_with("invalid size")
        );
        assert!(
            parse::<Memory>("100")
                .unwrap_err()
                .contains("smallest limit is 64KiB")
        );
    }

    #[test]
    fn fuel_and_numbers() {
        assert_eq!(parse::<Fuel>("1000").unwrap(), Fuel(Some(1000)));
        assert_eq!(parse::<Fuel>("\"unlimited\"").unwrap(), Fuel(None));
        assert!(parse::<Fuel>("0").is_err());
        assert_eq!(parse::<Fraction>("0.25").unwrap().0, 0.25);
        assert!(parse::<Fraction>("1.5").is_err());
        assert_eq!(parse::<Factor>("2").unwrap().0, 2.0);
        assert!(parse::<Factor>("0.5").is_err());
        assert_eq!(parse::<Schedule>("\"levels\"").unwrap(), Schedule::Levels);
        assert!(
            parse::<Schedule>("\"random\"")
                .unwrap_err()
                .contains("expected \"eager\" or \"levels\"")
        );
        assert_eq!(parse::<Concurrency>("\"auto\"").unwrap(), Concurrency::Auto);
        assert!(
            parse::<Concurrency>("0")
                .unwrap_err()
                .contains("a positive integer or \"auto\"")
        );
    }
}
