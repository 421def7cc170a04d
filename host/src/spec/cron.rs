//! `[workflow] cron`: when `flow serve` starts runs of a workflow by
//! itself, in which time zone, what to do when the previous run still
//! goes, and how far back to make up for fires missed while it was down.
//!
//! ```toml
//! [workflow]
//! id = "report"
//! cron = "0 */15 * * * *"     # seconds are optional: "*/15 * * * *"
//! timezone = "Europe/Berlin"  # IANA name; default UTC
//! overlap = "skip"            # or "queue", "allow"; default skip
//! catch_up = "1h"             # default: none
//! ```

use std::ops::Range;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use toml::Spanned;
use toml::de::DeValue;

use super::Diagnostic;
use crate::report::Timestamp;

/// The keys of `[workflow]` that make a schedule.
pub(super) const KEYS: &[&str] = &["cron", "timezone", "overlap", "catch_up"];

/// Fires missed while the server was down are made up for within
/// `catch_up`, but never more than this many per schedule.
pub const MAX_CATCH_UP: usize = 100;

/// A workflow's schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The cron expression as written.
    pub expression: String,
    cron: Cron,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
    zone: jiff::tz::TimeZone,
    /// What a fire does while a run it started still goes.
    pub overlap: Overlap,
    /// How far back fires missed while no server ran are made up for.
    pub catch_up: Duration,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.expression,
            &self.timezone,
            self.overlap,
            self.catch_up,
        ) == (
            &other.expression,
            &other.timezone,
            other.overlap,
            other.catch_up,
        )
    }
}

/// What a fire does while a run of the schedule still goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Nothing: the fire is skipped (and logged).
    #[default]
    Skip,
    /// The run starts when the one before ended (at most
    /// [`MAX_QUEUED`] wait).
    Queue,
    /// The run starts anyway, while fewer than [`MAX_RUNNING`] of the
    /// schedule's runs go.
    Allow,
}

impl Overlap {
    /// As the workflow file writes it.
    pub fn name(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }
}

/// At most this many fires wait with `overlap = "queue"`; more are
/// skipped.
pub const MAX_QUEUED: usize = 10;

/// At most this many runs of a schedule go at once with
/// `overlap = "allow"`; fires beyond are skipped, so that runs slower
/// than the schedule do not pile up without end.
pub const MAX_RUNNING: usize = 100;

impl CronSchedule {
    /// A schedule in UTC, skipping overlaps, without catch-up.
    pub fn new(expression: &str) -> Result<Self, String> {
        Ok(Self {
            expression: expression.to_string(),
            cron: parse(expression)?,
            timezone: "UTC".into(),
            zone: jiff::tz::TimeZone::UTC,
            overlap: Overlap::Skip,
            catch_up: Duration::ZERO,
        })
    }

    /// Reads the expression in the IANA time zone `name`.
    pub fn in_timezone(mut self, name: &str) -> Result<Self, String> {
        self.zone = time_zone(name)?;
        self.timezone = name.to_string();
        Ok(self)
    }

    /// The first fire strictly after `after`; `None` if there is none.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let millis = i64::try_from(after.0).ok()?;
        let zoned = jiff::Timestamp::from_millisecond(millis)
            .ok()?
            .to_zoned(self.zone.clone());
        let next = self.cron.find_next_occurrence(&zoned, false).ok()?;
        u64::try_from(next.timestamp().as_millisecond())
            .ok()
            .map(Timestamp)
    }

    /// A time as the schedule's zone shows it, to the second.
    pub fn local(&self, at: Timestamp) -> String {
        match jiff::Timestamp::from_millisecond(at.0 as i64) {
            Ok(time) => time
                .to_zoned(self.zone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            Err(_) => at.to_string(),
        }
    }
}

/// The IANA time zone called `name`.
fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|_| {
        format!("unknown time zone {name:?}; use an IANA name such as \"Europe/Berlin\" or \"UTC\"")
    })
}

fn parse(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expression)
        .map_err(|error| {
            format!(
                "not a cron expression ({}); write 5 fields (minute hour day month weekday) \
                 or 6 with seconds first, e.g. \"0 */15 * * * *\"",
                error.to_string().trim_end_matches('.')
            )
        })
}

/// The schedule keys of `[workflow]`, as read.
#[derive(Default)]
pub(super) struct Keys<'a> {
    pub cron: Option<&'a Spanned<DeValue<'a>>>,
    pub timezone: Option<&'a Spanned<DeValue<'a>>>,
    pub overlap: Option<&'a Spanned<DeValue<'a>>>,
    pub catch_up: Option<&'a Spanned<DeValue<'a>>>,
}

impl<'a> Keys<'a> {
    /// Takes `key` if it is one of the schedule's.
    pub fn take(&mut self, key: &str, value: &'a Spanned<DeValue<'a>>) -> bool {
        let slot = match key {
            "cron" => &mut self.cron,
            "timezone" => &mut self.timezone,
            "overlap" => &mut self.overlap,
            "catch_up" => &mut self.catch_up,
            _ => return false,
        };
        *slot = Some(value);
        true
    }

    /// The schedule they make, if `cron` is there; every mistake is a
    /// problem at its value.
    pub fn read(&self, problems: &mut Vec<Diagnostic>) -> Option<CronSchedule> {
        let text = super::document::string;
        let Some(cron) = self.cron else {
            for (key, value) in [
                ("timezone", self.timezone),
                ("overlap", self.overlap),
                ("catch_up", self.catch_up),
            ] {
                if let Some(value) = value {
                    problems.push(
                        Diagnostic::new(
                            format!("`{key}` only applies to a workflow with `cron`"),
                            Some(value.span()),
                        )
                        .help("add `cron = \"...\"` to [workflow], or remove this key"),
                    );
                }
            }
            return None;
        };
        let problem = |span: Range<usize>, message: String| Diagnostic::new(message, Some(span));
        // Every key is checked, whatever the others hold.
        let mut ok = true;
        let schedule = match text(cron, "cron", problems).map(|t| CronSchedule::new(&t)) {
            Some(Ok(schedule)) => Some(schedule),
            Some(Err(message)) => {
                problems.push(problem(cron.span(), message));
                None
            }
            None => None,
        };
        let mut zone = None;
        if let Some(value) = self.timezone
            && let Some(name) = text(value, "timezone", problems)
        {
            match time_zone(&name) {
                Ok(found) => zone = Some((name, found)),
                Err(message) => {
                    ok = false;
                    problems.push(problem(value.span(), message));
                }
            }
        }
        let mut overlap = Overlap::Skip;
        if let Some(value) = self.overlap
            && let Some(name) = text(value, "overlap", problems)
        {
            match name.as_str() {
                "skip" => overlap = Overlap::Skip,
                "queue" => overlap = Overlap::Queue,
                "allow" => overlap = Overlap::Allow,
                other => {
                    ok = false;
                    problems.push(problem(
                        value.span(),
                        format!("overlap = {other:?}: expected \"skip\", \"queue\" or \"allow\""),
                    ));
                }
            }
        }
        let mut catch_up = Duration::ZERO;
        if let Some(value) = self.catch_up
            && let Some(text) = text(value, "catch_up", problems)
        {
            match crate::options::parse_duration(&text) {
                Ok(duration) => catch_up = duration,
                Err(error) => {
                    ok = false;
                    problems.push(problem(value.span(), format!("catch_up: {error}")));
                }
            }
        }
        let mut schedule = schedule.filter(|_| ok)?;
        if let Some((name, found)) = zone {
            schedule.timezone = name;
            schedule.zone = found;
        }
        schedule.overlap = overlap;
        schedule.catch_up = catch_up;
        Some(schedule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        let time = humantime::parse_rfc3339(text).unwrap();
        Timestamp(
            time.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        )
    }

    #[test]
    fn fires_follow_the_expression_in_its_zone() {
        let every_15 = CronSchedule::new("0 */15 * * * *").unwrap();
        assert_eq!(
            every_15.next_after(at("2026-11-26T10:07:00Z")),
            Some(at("2026-11-26T10:15:00Z"))
        );
        assert_eq!(
            every_15.next_after(at("2026-11-26T10:15:00Z")),
            Some(at("2026-11-26T10:30:00Z")),
            "strictly after"
        );
        let five_fields = CronSchedule::new("30 2 * * *").unwrap();
        assert_eq!(
            five_fields.next_after(at("2026-11-26T03:00:00Z")),
            Some(at("2026-11-27T02:30:00Z"))
        );
        // 02:30 in Berlin is 01:30 UTC in winter.
        let berlin = five_fields.in_timezone("Europe/Berlin").unwrap();
        assert_eq!(
            berlin.next_after(at("2026-11-26T03:00:00Z")),
            Some(at("2026-11-27T01:30:00Z"))
        );
        assert_eq!(
            berlin.local(at("2026-11-27T01:30:00Z")),
            "2026-11-27 02:30:00 CET"
        );
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(
            CronSchedule::new("every day")
                .unwrap_err()
                .contains("not a cron expression")
        );
        assert!(CronSchedule::new("61 * * * *").is_err());
        let error = CronSchedule::new("* * * * *")
            .unwrap()
            .in_timezone("Mars/Olympus")
            .unwrap_err();
        assert!(
            error.contains("unknown time zone \"Mars/Olympus\""),
            "{error}"
        );
    }
}
