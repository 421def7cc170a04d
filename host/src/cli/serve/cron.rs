//! Cron: the server starts runs of the workflow files that have `cron`.
//!
//! [`Plan`] decides, given the time, what each schedule's due fires do
//! (start, wait in a queue, skip); it reads no clock, so that tests give
//! it the times they want. [`run`] is the loop that feeds it the real time
//! and starts the runs. The last fire of each schedule is kept in the
//! store, so that a restarted server knows what it missed: fires within
//! the schedule's `catch_up` run (each recorded with the time it was due),
//! older ones are logged as missed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use flow_host::report::Timestamp;
use flow_host::spec::cron::{MAX_CATCH_UP, MAX_QUEUED, MAX_RUNNING};
use flow_host::spec::{CronSchedule, Overlap};

use super::state::App;

/// A fire that came later than its time by less than this is on time
/// (the server was busy, or its timer late), not missed.
const LATE: Duration = Duration::from_secs(60);

// The message of a fire skipped for MAX_RUNNING spells the number.
const _: () = assert!(MAX_RUNNING == 100);

/// How often the loop looks at the workflow files again, at least.
const RESCAN: Duration = Duration::from_secs(10);

/// What to do about one due fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fire {
    /// Start a run for the time `due`.
    Start { name: String, due: Timestamp },
    /// The fire waits for the schedule's run to end (`overlap = "queue"`).
    Queued { name: String, due: Timestamp },
    /// Nothing runs for it, and why.
    Skipped {
        name: String,
        due: Timestamp,
        why: &'static str,
    },
    /// Fires between `from` and `to` were missed while no server ran and
    /// are older than `catch_up`.
    Missed {
        name: String,
        from: Timestamp,
        to: Timestamp,
    },
}

/// What the plan knows of each schedule.
#[derive(Debug, Default)]
struct Known {
    /// The time of the newest fire handled.
    last: Option<Timestamp>,
    queue: VecDeque<Timestamp>,
}

/// The schedules' state between ticks.
#[derive(Debug, Default)]
pub struct Plan {
    known: HashMap<String, Known>,
}

impl Plan {
    /// Starts from `last`, the newest fire a store recorded for `name`
    /// (none: the schedule counts from the first tick).
    pub fn remember(&mut self, name: &str, last: Option<Timestamp>) {
        self.known.entry(name.to_string()).or_default().last = last;
    }

    /// Whether the plan has heard of `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.known.contains_key(name)
    }

    /// The newest fire handled for `name`.
    pub fn last(&self, name: &str) -> Option<Timestamp> {
        self.known.get(name).and_then(|known| known.last)
    }

    /// The fires of schedule `name` due by `now`, in order, and what each
    /// does; `running` says how many runs the schedule started still go.
    /// Queued fires of a schedule whose run ended come first.
    pub fn tick(
        &mut self,
        name: &str,
        schedule: &CronSchedule,
        now: Timestamp,
        mut running: usize,
    ) -> Vec<Fire> {
        let known = self.known.entry(name.to_string()).or_default();
        let mut fires = Vec::new();
        if running == 0
            && let Some(due) = known.queue.pop_front()
        {
            fires.push(Fire::Start {
                name: name.to_string(),
                due,
            });
            running = 1;
        }
        let Some(last) = known.last else {
            // A new schedule counts from now.
            known.last = Some(now);
            return fires;
        };
        // Fires older than this were missed (beyond `catch_up`).
        let window = schedule.catch_up.max(LATE).as_millis() as u64;
        let earliest = Timestamp(now.0.saturating_sub(window));
        let mut from = last;
        if let Some(first) = schedule.next_after(last)
            && first.0 < earliest.0
            && first.0 <= now.0
        {
            // Jump over what is too old, without listing every fire.
            let skipped_to = schedule
                .next_after(Timestamp(earliest.0.saturating_sub(1)))
                .map_or(now, |next| Timestamp(next.0.saturating_sub(1)).min(now));
            fires.push(Fire::Missed {
                name: name.to_string(),
                from: first,
                to: skipped_to,
            });
            from = Timestamp(earliest.0.saturating_sub(1)).max(last);
        }
        // Only the newest are kept: a catch-up is bounded.
        let due_times = newest_fires(schedule, from, now, MAX_CATCH_UP + 1);
        // Handled up to the newest due fire; with none, up to where the
        // missed ones end, so that the next tick neither reports them
        // again nor wakes at once to look at them.
        known.last = Some(due_times.last().copied().unwrap_or(from));
        // With "allow", the newest fires start while fewer than
        // MAX_RUNNING runs go; the oldest beyond are skipped.
        let crowded = match schedule.overlap {
            Overlap::Allow => due_times
                .len()
                .saturating_sub(MAX_RUNNING.saturating_sub(running)),
            _ => 0,
        };
        for (index, due) in due_times.into_iter().enumerate() {
            let name = name.to_string();
            fires.push(match (running, schedule.overlap) {
                (_, Overlap::Allow) if index < crowded => Fire::Skipped {
                    name,
                    due,
                    why: "100 runs of it go, the most overlap = \"allow\" lets go at once",
                },
                (0, _) | (_, Overlap::Allow) => {
                    running += 1;
                    Fire::Start { name, due }
                }
                (_, Overlap::Queue) if known.queue.len() < MAX_QUEUED => {
                    known.queue.push_back(due);
                    Fire::Queued { name, due }
                }
                (_, Overlap::Queue) => Fire::Skipped {
                    name,
                    due,
                    why: "its queue is full",
                },
                (_, Overlap::Skip) => Fire::Skipped {
                    name,
                    due,
                    why: "the run it started before still goes (overlap = \"skip\")",
                },
            });
        }
        fires
    }

    /// Fires that wait for schedule `name`'s run to end.
    pub fn queued(&self, name: &str) -> usize {
        self.known.get(name).map_or(0, |known| known.queue.len())
    }
}

/// The newest `most` fires of `schedule` after `after` and by `now`, in
/// order. However many fires the span holds (a catch-up of a year of a
/// fire a second), this asks the schedule for a few thousand at most.
fn newest_fires(
    schedule: &CronSchedule,
    after: Timestamp,
    now: Timestamp,
    most: usize,
) -> Vec<Timestamp> {
    // Up to `most + 1` fires after `from`, so as to tell whether there
    // are more than `most`.
    let fires_after = |mut from: Timestamp| {
        let mut fires = Vec::new();
        while fires.len() <= most
            && let Some(due) = schedule.next_after(from).filter(|due| due.0 <= now.0)
        {
            fires.push(due);
            from = due;
        }
        fires
    };
    let fires = fires_after(after);
    if fires.len() <= most {
        return fires;
    }
    // The latest start that still leaves `most` fires: more than `most`
    // after `low`, fewer after `high`.
    let (mut low, mut high) = (after.0, now.0);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fires_after(Timestamp(middle)).len() >= most {
            low = middle;
        } else {
            high = middle;
        }
    }
    let mut fires = fires_after(Timestamp(low));
    fires.truncate(most);
    fires
}

/// The loop: fires the schedules of the server's workflow files until the
/// server stops.
pub async fn run(app: Arc<App>) {
    let mut plan = Plan::default();
    // The runs each schedule started that may still go.
    let mut started: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let schedules = scheduled(&app).await;
        let now = Timestamp::now();
        let mut wake = Duration::from_secs(RESCAN.as_secs());
        for (name, spec) in &schedules {
            let Some(schedule) = &spec.cron else { continue };
            if !plan.knows(name) {
                plan.remember(name, app.store.last_fire(name).ok().flatten());
            }
            let runs = started.entry(name.clone()).or_default();
            runs.retain(|run| app.is_running(run));
            for fire in plan.tick(name, schedule, now, runs.len()) {
                match fire {
                    Fire::Start { name, due } => match start(&app, spec, due).await {
                        Ok(run) => {
                            tracing::info!(target: "flow::serve", "schedule {name}: run {run} for {}", schedule.local(due));
                            runs.push(run);
                        }
                        Err(error) => tracing::error!(
                            target: "flow::serve",
                            "schedule {name}: the run for {} did not start: {error}",
                            schedule.local(due)
                        ),
                    },
                    Fire::Queued { name, due } => tracing::info!(
                        target: "flow::serve",
                        "schedule {name}: the fire of {} waits for the run before to end",
                        schedule.local(due)
                    ),
                    Fire::Skipped { name, due, why } => tracing::warn!(
                        target: "flow::serve",
                        "schedule {name}: skipped the fire of {}: {why}",
                        schedule.local(due)
                    ),
                    Fire::Missed { name, from, to } => tracing::warn!(
                        target: "flow::serve",
                        "schedule {name}: missed the fires from {} to {} while no server ran (beyond catch_up = {})",
                        schedule.local(from),
                        schedule.local(to),
                        humantime::format_duration(schedule.catch_up)
                    ),
                }
            }
            if let Some(last) = plan.last(name)
                && let Err(error) = app.store.set_last_fire(name, last)
            {
                tracing::error!(target: "flow::serve", "schedule {name}: cannot record its last fire: {error}");
            }
            if plan.queued(name) > 0 {
                // A queued fire starts soon after the run before ends.
                wake = wake.min(Duration::from_millis(200));
            }
            if let Some(next) = plan.last(name).and_then(|last| schedule.next_after(last)) {
                wake = wake.min(Duration::from_millis(next.0.saturating_sub(now.0)));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wake) => {}
            () = app.shutdown.cancelled() => return,
        }
    }
}

/// The valid workflow files that have `cron`, read off the async workers.
async fn scheduled(app: &Arc<App>) -> Vec<(String, flow_host::WorkflowSpec)> {
    let catalog = app.catalog.clone();
    tokio::task::spawn_blocking(move || catalog.scheduled())
        .await
        .unwrap_or_default()
}

async fn start(
    app: &Arc<App>,
    spec: &flow_host::WorkflowSpec,
    due: Timestamp,
) -> Result<String, String> {
    let spec = spec.clone();
    let dirs = app
        .plugins_dirs(&spec, &spec.source.path)
        .map_err(|problem| problem.detail)?;
    app.launch(Arc::new(spec), &dirs, |engine, spec, plugins| {
        engine.start_scheduled(spec, plugins, due)
    })
    .await
    .map_err(|problem| problem.detail)
}

/// The next fire of each schedule of the server's workflow files, for the
/// API and the server's start.
pub fn next_fire(app: &App, name: &str, schedule: &CronSchedule) -> Option<Timestamp> {
    let last = app.store.last_fire(name).ok().flatten();
    let from = match last {
        Some(last) => last.max(Timestamp(
            Timestamp::now()
                .0
                .saturating_sub(schedule.catch_up.max(LATE).as_millis() as u64),
        )),
        None => Timestamp::now(),
    };
    schedule.next_after(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn at(minutes: u64) -> Timestamp {
        // 2026-11-26T00:00:00Z, plus minutes.
        Timestamp(1_795_651_200_000 + minutes * MIN)
    }

    fn every_15(overlap: Overlap, catch_up: Duration) -> CronSchedule {
        let mut schedule = CronSchedule::new("0 */15 * * * *").unwrap();
        schedule.overlap = overlap;
        schedule.catch_up = catch_up;
        schedule
    }

    fn starts(fires: &[Fire]) -> Vec<u64> {
        fires
            .iter()
            .filter_map(|fire| match fire {
                Fire::Start { due, .. } => Some((due.0 - at(0).0) / MIN),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_schedule_fires_at_its_times_and_counts_from_its_first_tick() {
        let schedule = every_15(Overlap::Skip, Duration::ZERO);
        let mut plan = Plan::default();
        assert!(
            plan.tick("r", &schedule, at(7), 0).is_empty(),
            "new: counts from now"
        );
        assert!(plan.tick("r", &schedule, at(14), 0).is_empty());
        assert_eq!(starts(&plan.tick("r", &schedule, at(15), 0)), [15]);
        assert!(plan.tick("r", &schedule, at(15), 0).is_empty(), "once");
        // A tick that comes late still fires, for the time it was due.
        assert_eq!(
            starts(&plan.tick("r", &schedule, Timestamp(at(30).0 + 5_000), 0)),
            [30]
        );
        assert_eq!(plan.last("r"), Some(at(30)));
    }

    #[test]
    fn overlap_skip_queue_and_allow() {
        let mut plan = Plan::default();
        let skip = every_15(Overlap::Skip, Duration::ZERO);
        plan.remember("s", Some(at(0)));
        let fires = plan.tick("s", &skip, at(15), 1);
        assert!(
            matches!(&fires[..], [Fire::Skipped { why, .. }] if why.contains("still goes")),
            "{fires:?}"
        );
        assert_eq!(starts(&plan.tick("s", &skip, at(30), 0)), [30]);

        let queue = every_15(Overlap::Queue, Duration::ZERO);
        plan.remember("q", Some(at(0)));
        let fires = plan.tick("q", &queue, at(15), 1);
        assert!(matches!(&fires[..], [Fire::Queued { .. }]), "{fires:?}");
        assert_eq!(plan.queued("q"), 1);
        assert!(
            starts(&plan.tick("q", &queue, at(20), 1)).is_empty(),
            "still running"
        );
        assert_eq!(
            starts(&plan.tick("q", &queue, at(21), 0)),
            [15],
            "after the run before"
        );
        assert_eq!(plan.queued("q"), 0);
        // Bounded: a queue holds at most MAX_QUEUED fires.
        for i in 0..(MAX_QUEUED as u64 + 2) {
            plan.tick("q", &queue, at(30 + 15 * i), 1);
        }
        assert_eq!(plan.queued("q"), MAX_QUEUED);

        let allow = every_15(Overlap::Allow, Duration::ZERO);
        plan.remember("a", Some(at(0)));
        assert_eq!(starts(&plan.tick("a", &allow, at(15), 1)), [15]);
        // Bounded: at most MAX_RUNNING runs of the schedule go at once.
        assert_eq!(
            starts(&plan.tick("a", &allow, at(30), MAX_RUNNING - 1)),
            [30]
        );
        let fires = plan.tick("a", &allow, at(45), MAX_RUNNING);
        assert!(
            matches!(&fires[..], [Fire::Skipped { why, .. }] if why.contains("the most")),
            "{fires:?}"
        );
    }

    #[test]
    fn a_restart_catches_up_within_catch_up_and_reports_the_rest_missed() {
        // Last fire at 0:00; the server comes back at 3:05 with
        // catch_up = 1h: 2:15, 2:30, 2:45 and 3:00 run, in order.
        let schedule = every_15(Overlap::Allow, Duration::from_secs(3600));
        let mut plan = Plan::default();
        plan.remember("r", Some(at(0)));
        let fires = plan.tick("r", &schedule, at(185), 0);
        assert_eq!(starts(&fires), [135, 150, 165, 180]);
        match &fires[0] {
            Fire::Missed { from, to, .. } => {
                assert_eq!(*from, at(15));
                assert!(to.0 < at(135).0 && to.0 >= at(120).0, "{to:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plan.last("r"), Some(at(180)));
        // Without catch_up, only a fire late by less than a minute runs.
        let strict = every_15(Overlap::Allow, Duration::ZERO);
        plan.remember("s", Some(at(0)));
        let fires = plan.tick("s", &strict, at(180), 0);
        assert_eq!(starts(&fires), [180]);
        // With skip, the first catch-up runs and the others are skipped.
        let skip = every_15(Overlap::Skip, Duration::from_secs(3600));
        plan.remember("k", Some(at(0)));
        let fires = plan.tick("k", &skip, at(185), 0);
        assert_eq!(starts(&fires), [135]);
        assert_eq!(
            fires
                .iter()
                .filter(|f| matches!(f, Fire::Skipped { .. }))
                .count(),
            3
        );
    }

    #[test]
    fn a_long_catch_up_is_bounded() {
        let mut schedule = CronSchedule::new("* * * * * *").unwrap();
        schedule.overlap = Overlap::Allow;
        schedule.catch_up = Duration::from_secs(24 * 3600);
        let mut plan = Plan::default();
        plan.remember("s", Some(at(0)));
        let fires = plan.tick("s", &schedule, at(600), 0);
        // The newest MAX_CATCH_UP + 1 fires; with "allow", the newest
        // MAX_RUNNING of them start (the one due now among them) and the
        // oldest is skipped.
        assert_eq!(fires.len(), MAX_CATCH_UP + 1);
        assert_eq!(starts(&fires).len(), MAX_RUNNING);
        assert_eq!(starts(&fires).last(), Some(&600));
        assert!(
            matches!(fires.first(), Some(Fire::Skipped { why, .. }) if why.contains("100 runs")),
            "{:?}",
            fires.first()
        );
        assert_eq!(plan.last("s"), Some(at(600)));
        // A catch-up over half a century of a fire a second: the newest
        // fires, found without stepping through the 1.7 billion before.
        schedule.catch_up = Duration::from_secs(100 * 31_557_600);
        plan.remember("old", Some(Timestamp(0)));
        let fires = plan.tick("old", &schedule, at(0), 0);
        let due: Vec<u64> = fires
            .iter()
            .filter_map(|fire| match fire {
                Fire::Start { due, .. } | Fire::Skipped { due, .. } => Some(due.0),
                _ => None,
            })
            .collect();
        let newest: Vec<u64> = (0..=MAX_CATCH_UP as u64)
            .rev()
            .map(|back| at(0).0 - back * 1_000)
            .collect();
        assert_eq!(due, newest);
        assert_eq!(plan.last("old"), Some(at(0)));
    }

    #[test]
    fn a_restart_between_fires_reports_the_missed_ones_once_and_waits_for_the_next() {
        // Last fire at 0:00; back at 1:07 without catch_up: 0:15 to 1:00
        // were missed, and nothing is due before 1:15.
        let schedule = every_15(Overlap::Skip, Duration::ZERO);
        let mut plan = Plan::default();
        plan.remember("r", Some(at(0)));
        let fires = plan.tick("r", &schedule, at(67), 0);
        assert!(
            matches!(&fires[..], [Fire::Missed { from, .. }] if *from == at(15)),
            "{fires:?}"
        );
        // The loop sleeps until the next fire after the last handled one:
        // 1:15, not at once (which would spin until then).
        let last = plan.last("r").unwrap();
        assert_eq!(schedule.next_after(last), Some(at(75)));
        assert!(
            plan.tick("r", &schedule, Timestamp(at(67).0 + 1_000), 0)
                .is_empty()
        );
        assert_eq!(starts(&plan.tick("r", &schedule, at(75), 0)), [75]);
    }
}
