//! Scheduling: both schedules respect every dependency and the pool bound;
//! eager takes the critical path first; levels waits for each level.

use std::sync::{Arc, Mutex};

use flow_host::options::Schedule;
use flow_host::{Event, Observer, RunStatus};

use crate::support::Library;

/// Records starts and finishes, and the peak number of attempts in flight.
#[derive(Default)]
struct Trace {
    events: Mutex<Vec<(bool, String)>>,
    in_flight: Mutex<(usize, usize)>,
}

impl Observer for Trace {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::AttemptStarted { node, .. } => {
                let mut flight = self.in_flight.lock().unwrap();
                flight.0 += 1;
                flight.1 = flight.1.max(flight.0);
                self.events.lock().unwrap().push((true, node.to_string()));
            }
            Event::AttemptFinished { node, .. } => {
                self.in_flight.lock().unwrap().0 -= 1;
                self.events.lock().unwrap().push((false, node.to_string()));
            }
            _ => {}
        }
    }
}

impl Trace {
    fn starts(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(start, _)| *start)
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn position(&self, start: bool, node: &str) -> usize {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .position(|(s, n)| *s == start && n == node)
            .unwrap()
    }
}

/// A layered DAG: `levels` levels of `width` nodes, each node depending on
/// one to three nodes of the level above, chosen with a fixed seed.
fn layered(levels: usize, width: usize, schedule: &str, workers: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut text = format!(
        "[workflow]\nid = \"layers\"\nschedule = \"{schedule}\"\nmax_concurrency = {workers}\n"
    );
    for level in 0..levels {
        for i in 0..width {
            text.push_str(&format!("[nodes.l{level}n{i}]\naction = \"echo\"\n"));
            if level > 0 {
                let mut parents: Vec<usize> =
                    (0..rng.usize(1..=3)).map(|_| rng.usize(0..width)).collect();
                parents.sort();
                parents.dedup();
                let parents: Vec<String> = parents
                    .iter()
                    .map(|p| format!("\"l{}n{p}\"", level - 1))
                    .collect();
                text.push_str(&format!("depends_on = [{}]\n", parents.join(", ")));
            }
        }
    }
    text
}

async fn run(library: &Library, text: &str) -> (Arc<flow_host::WorkflowSpec>, Arc<Trace>) {
    let spec = library.workflow(text);
    let trace = Arc::new(Trace::default());
    let (engine, _) = library.engine();
    let report = engine
        .with_observer(trace.clone())
        .execute(spec.clone(), library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded);
    (spec, trace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_schedules_respect_every_dependency_and_the_bound() {
    let library = Library::new().await;
    for schedule in ["eager", "levels"] {
        let (spec, trace) = run(&library, &layered(6, 8, schedule, 3)).await;
        assert!(
            trace.in_flight.lock().unwrap().1 <= 3,
            "{schedule}: peak above max_concurrency"
        );
        assert_eq!(trace.starts().len(), spec.nodes.len());
        for (index, node) in spec.nodes.iter().enumerate() {
            for &dep in spec.dag.dependencies(index) {
                let dep = &spec.nodes[dep].id;
                assert!(
                    trace.position(false, dep) < trace.position(true, &node.id),
                    "{schedule}: {} started before {dep} finished",
                    node.id
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_takes_the_longest_path_first() {
    let library = Library::new().await;
    // Three roots; `a1` heads a chain of three. One worker makes the order
    // of starts the scheduler's choice alone.
    let text = "[workflow]\nid = \"w\"\nmax_concurrency = 1\nschedule = \"SCHEDULE\"\n\
        [nodes.b]\naction = \"echo\"\n[nodes.c]\naction = \"echo\"\n[nodes.a1]\naction = \"echo\"\n\
        [nodes.a2]\naction = \"echo\"\ndepends_on = [\"a1\"]\n[nodes.a3]\naction = \"echo\"\ndepends_on = [\"a2\"]\n";
    let (_, eager) = run(&library, &text.replace("SCHEDULE", "eager")).await;
    assert_eq!(eager.starts(), ["a1", "a2", "b", "c", "a3"]);
    let (_, levels) = run(&library, &text.replace("SCHEDULE", "levels")).await;
    assert_eq!(levels.starts(), ["b", "c", "a1", "a2", "a3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn levels_start_after_the_whole_previous_level() {
    let library = Library::new().await;
    let (spec, trace) = run(&library, &layered(4, 6, "levels", 4)).await;
    for (index, node) in spec.nodes.iter().enumerate() {
        let level = spec.dag.level_of(index);
        for (other, earlier) in spec.nodes.iter().enumerate() {
            if spec.dag.level_of(other) < level {
                assert!(trace.position(false, &earlier.id) < trace.position(true, &node.id));
            }
        }
    }
    assert_eq!(spec.options.schedule, Schedule::Levels);
}
