//! The sled store's own tests, beside the conformance suite every store
//! passes.

use super::*;
use crate::store::conformance::{self, numbers};

fn open() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

#[test]
fn round_trip() {
    conformance::round_trip(&open().1);
}

#[test]
fn listing_and_prefixes() {
    conformance::listing_and_prefixes(&open().1);
}

#[test]
fn deletion() {
    conformance::deletion(&open().1);
}

#[test]
fn nodes_and_attempts_do_not_mix() {
    conformance::nodes_and_attempts_do_not_mix(&open().1);
}

#[test]
fn sinks_inside_a_header_of_an_older_version_are_read() {
    let (_dir, store) = open();
    let mut run = conformance::run_record("01OLD", RunStatus::Succeeded);
    run.sinks = Some(vec!["last".into()]);
    // As older versions wrote it: the sinks inside the header.
    store.runs.insert("01OLD", encode(&run).unwrap()).unwrap();
    assert_eq!(store.sinks("01OLD").unwrap(), Some(vec!["last".into()]));
    assert_eq!(store.run("01OLD").unwrap().unwrap().sinks, run.sinks);
}

#[test]
fn a_big_history_comes_in_file_order_with_its_attempts() {
    conformance::a_big_history_comes_in_file_order_with_its_attempts(&open().1);
}

#[test]
fn a_damaged_record_deep_in_a_big_history_is_an_error() {
    let (_dir, store) = open();
    conformance::a_big_history_comes_in_file_order_with_its_attempts(&store);
    // Read after the first batch, on the decoding thread.
    store
        .nodes
        .insert(node_key("01BIG", "n2500"), &b"\x00not a record"[..])
        .unwrap();
    let error = store.history("01BIG").unwrap_err().to_string();
    assert!(error.contains("n2500"), "{error}");
    let error = store.nodes("01BIG").unwrap_err().to_string();
    assert!(error.contains("n2500"), "{error}");
}

#[test]
fn a_large_output_is_kept_apart_and_read_back_whole() {
    use crate::report::JsonText;
    let (_dir, store) = open();
    let run = conformance::run_record("01L", RunStatus::Succeeded);
    store.create_run(&run, "").unwrap();
    let text = format!("\"{}\"", "x".repeat(SEPARATE_OUTPUT));
    let big = JsonText::parse(&text, usize::MAX).unwrap();
    let small = JsonText::parse("[1]", 64).unwrap();
    let mut node = conformance::node_record("big", 0, NodeStatus::Succeeded);
    node.output = Some(big.clone());
    let mut other = conformance::node_record("small", 1, NodeStatus::Succeeded);
    other.output = Some(small.clone());
    // In key order around them: a `null` output, and another kept apart.
    let mut null = conformance::node_record("a", 2, NodeStatus::Succeeded);
    null.output = Some(JsonText::parse("null", 64).unwrap());
    let bigger = JsonText::parse(&format!("[{text}]"), usize::MAX).unwrap();
    let mut second = conformance::node_record("bz", 3, NodeStatus::Succeeded);
    second.output = Some(bigger.clone());
    store
        .put_batch("01L", &[node, other, null, second], &[])
        .unwrap();

    let record = store.nodes.get(node_key("01L", "big")).unwrap().unwrap();
    assert!(record.len() < 1024, "the record holds the output");
    assert!(
        store
            .outputs
            .get(node_key("01L", "small"))
            .unwrap()
            .is_none()
    );
    let nodes = store.nodes("01L").unwrap();
    assert_eq!(nodes[0].output.as_ref(), Some(&big));
    assert_eq!(nodes[1].output.as_ref(), Some(&small));
    assert_eq!(nodes[2].output, None);
    assert_eq!(nodes[3].output.as_ref(), Some(&bigger));
    let history = store.history("01L").unwrap();
    let outputs: Vec<_> = history.iter().map(|h| h.node.output.as_ref()).collect();
    assert_eq!(outputs, [Some(&big), Some(&small), None, Some(&bigger)]);
    let one = store.node("01L", "big").unwrap().unwrap();
    assert_eq!(one.node.output, Some(big));
    // A node of the same id in another run, whose output is `null`,
    // does not take it.
    store
        .create_run(&conformance::run_record("01L2", RunStatus::Succeeded), "")
        .unwrap();
    let mut null = conformance::node_record("big", 0, NodeStatus::Succeeded);
    null.output = Some(JsonText::parse("null", 64).unwrap());
    store.put_batch("01L2", &[null], &[]).unwrap();
    assert_eq!(store.nodes("01L2").unwrap()[0].output, None);
    assert_eq!(store.history("01L2").unwrap()[0].node.output, None);
    assert!(store.delete_run("01L2").unwrap());

    assert!(store.delete_run("01L").unwrap());
    assert!(store.outputs.is_empty(), "deleted with its run");
}

#[test]
fn sinks_are_kept_with_the_run() {
    conformance::sinks_are_kept_with_the_run(&open().1);
}

#[test]
fn one_node_is_read_with_its_elements() {
    conformance::one_node_is_read_with_its_elements(&open().1);
}

#[test]
fn schedules_remember_their_last_fire() {
    let (dir, store) = open();
    conformance::schedules_remember_their_last_fire(&store);
    drop(store);
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.last_fire("nightly").unwrap(), Some(Timestamp(9_000)));
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        let run = conformance::run_record("01A", RunStatus::Succeeded);
        store.create_run(&run, "text").unwrap();
        store.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(store.run("01A").unwrap().unwrap().workflow_id, "wf");
}

#[test]
fn runs_left_running_are_interrupted_on_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        store
            .create_run(&conformance::run_record("01A", RunStatus::Running), "")
            .unwrap();
        store
            .create_run(&conformance::run_record("01B", RunStatus::Running), "")
            .unwrap();
        let mut done = conformance::run_record("01B", RunStatus::Succeeded);
        done.finished_at = Some(crate::report::Timestamp(5));
        store.update_run(&done).unwrap();
        store.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(
        store.run("01A").unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    assert_eq!(
        store.run("01B").unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}

#[test]
fn a_file_is_not_a_database() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let error = SledStore::open(file.path()).unwrap_err();
    assert!(error.to_string().contains("it is a file"), "{error}");
}

#[test]
fn a_directory_of_other_files_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let error = SledStore::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::NotADatabase { .. }), "{error}");
    assert!(error.to_string().contains("(notes.txt)"), "{error}");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing was written there");
}

#[test]
fn random_bytes_are_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::create_dir(&path).unwrap();
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(path.join("conf"), &noise[..1000]).unwrap();
    std::fs::write(path.join("db"), &noise).unwrap();
    let error = SledStore::open(&path).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not a flow run database, or it is damaged"),
        "{error}"
    );
}

#[test]
fn a_version_3_database_is_read_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        store.db.insert("schema_version", "3").unwrap();
        let mut node = conformance::node_record("n", 0, crate::report::NodeStatus::Failed);
        node.error = None;
        let mut old = serde_json::to_value(&node).unwrap();
        old["error"] = "retryable error: busy".into();
        store
            .nodes
            .insert(node_key("01A", "n"), serde_json::to_vec(&old).unwrap())
            .unwrap();
        store.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    let error = store.nodes("01A").unwrap()[0].error.clone().unwrap();
    assert_eq!(error.kind, crate::report::FailureKind::Retryable);
    assert_eq!(&*store.db.get("schema_version").unwrap().unwrap(), b"6");
}

#[test]
fn a_version_5_database_is_read_as_it_is_and_written_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let node = conformance::node_record("n", 0, NodeStatus::Running);
    {
        let store = SledStore::open(&path).unwrap();
        store.db.insert("schema_version", "5").unwrap();
        // As version 5 wrote them: the record alone, each attempt apart.
        store
            .nodes
            .insert(node_key("01A", "n"), encode(&node).unwrap())
            .unwrap();
        for number in [1, 2] {
            let attempt = conformance::attempt_record(number);
            store
                .nodes
                .insert(attempt_key("01A", "n", number), encode(&attempt).unwrap())
                .unwrap();
        }
        store.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(&*store.db.get("schema_version").unwrap().unwrap(), b"6");
    assert_eq!(numbers(&store.attempts("01A", "n").unwrap()), [1, 2]);
    // The next attempt goes apart too, after the others.
    let mut third = conformance::attempt_record(3);
    third.error = Some(crate::report::Failure::lost());
    store.put_node("01A", &node, Some(&third)).unwrap();
    for attempts in [
        store.attempts("01A", "n").unwrap(),
        store.history("01A").unwrap()[0].attempts.clone(),
        store.node("01A", "n").unwrap().unwrap().attempts,
    ] {
        assert_eq!(numbers(&attempts), [1, 2, 3]);
        assert_eq!(attempts[2], third);
    }
    assert_eq!(store.nodes("01A").unwrap(), [node]);
}

#[test]
fn writers_of_one_node_keep_each_others_attempts() {
    let (_dir, store) = open();
    let node = conformance::node_record("n", 0, NodeStatus::Running);
    std::thread::scope(|scope| {
        for first in [1, 2] {
            let (store, node) = (&store, &node);
            scope.spawn(move || {
                for number in (first..=400).step_by(2) {
                    let attempt = conformance::attempt_record(number);
                    store.put_node("01A", node, Some(&attempt)).unwrap();
                }
            });
        }
    });
    assert_eq!(
        numbers(&store.attempts("01A", "n").unwrap()),
        (1..=400).collect::<Vec<u32>>()
    );
}

#[test]
fn a_damaged_record_is_replaced_by_the_next_write() {
    let (_dir, store) = open();
    store
        .nodes
        .insert(node_key("01A", "n"), &b"[{\"node_id\":"[..])
        .unwrap();
    assert!(store.nodes("01A").is_err());
    let node = conformance::node_record("n", 0, NodeStatus::Running);
    let attempt = conformance::attempt_record(2);
    store.put_node("01A", &node, Some(&attempt)).unwrap();
    assert_eq!(store.nodes("01A").unwrap(), [node]);
    assert_eq!(
        store.attempts("01A", "n").unwrap(),
        std::slice::from_ref(&attempt)
    );
    assert_eq!(store.history("01A").unwrap()[0].attempts, [attempt]);
}

#[test]
fn attempts_written_out_of_order_around_a_spill_are_read_in_order() {
    use crate::store::{GuestLine, LineKind};
    let (_dir, store) = open();
    let node = conformance::node_record("n", 0, NodeStatus::Running);
    let attempt = |number: u32, heavy: bool| {
        let mut attempt = conformance::attempt_record(number);
        if heavy {
            attempt.logs = vec![GuestLine {
                kind: LineKind::Stdout,
                text: "x".repeat(40 << 10),
            }];
        }
        attempt
    };
    let written = [
        attempt(10, false),
        attempt(1, false),
        attempt(2, true),
        attempt(3, true),
        attempt(4, true),
    ];
    for one in &written {
        store.put_node("01A", &node, Some(one)).unwrap();
    }
    assert_eq!(store.spilled("01A", "n").unwrap().len(), 1, "4 is apart");
    assert_eq!(
        numbers(&store.attempts("01A", "n").unwrap()),
        [1, 2, 3, 4, 10]
    );
    assert_eq!(
        numbers(&store.history("01A").unwrap()[0].attempts),
        [1, 2, 3, 4, 10]
    );
    assert_eq!(
        numbers(&store.node("01A", "n").unwrap().unwrap().attempts),
        [1, 2, 3, 4, 10]
    );
}

#[test]
fn heavy_attempts_spill_and_are_read_back_in_order_across_batches() {
    use crate::store::{GuestLine, LineKind};
    let (_dir, store) = open();
    store
        .create_run(&conformance::run_record("01S", RunStatus::Succeeded), "")
        .unwrap();
    let ids: Vec<String> = (0..1500).map(|i| format!("n{i}")).collect();
    let nodes: Vec<NodeRecord> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| conformance::node_record(id, i, NodeStatus::Succeeded))
        .collect();
    store.put_batch("01S", &nodes, &[]).unwrap();
    // The node whose entry ends the first batch a reader takes: its
    // spilled attempts begin the second.
    let mut sorted = ids.clone();
    sorted.sort();
    let heavy_id = &sorted[1023];
    let heavy = |number: u32| {
        let mut attempt = conformance::attempt_record(number);
        attempt.logs = vec![GuestLine {
            kind: LineKind::Stderr,
            text: format!("{number}").repeat(40 << 10),
        }];
        attempt
    };
    for number in 1..=4 {
        let record = &nodes[ids.iter().position(|id| id == heavy_id).unwrap()];
        store.put_node("01S", record, Some(&heavy(number))).unwrap();
    }
    let spilled = store.spilled("01S", heavy_id).unwrap();
    assert!(!spilled.is_empty(), "some attempts are kept apart");
    let want: Vec<AttemptRecord> = (1..=4).map(heavy).collect();
    assert_eq!(store.attempts("01S", heavy_id).unwrap(), want);
    assert_eq!(store.node("01S", heavy_id).unwrap().unwrap().attempts, want);
    let history = store.history("01S").unwrap();
    assert_eq!(history.len(), 1500);
    for (i, node) in history.iter().enumerate() {
        assert_eq!(node.node.node_id, ids[i]);
        let expected = if &ids[i] == heavy_id { 4 } else { 0 };
        assert_eq!(node.attempts.len(), expected, "attempts of {}", ids[i]);
    }
    assert_eq!(
        history
            .iter()
            .find(|h| &h.node.node_id == heavy_id)
            .unwrap()
            .attempts,
        want
    );
    assert_eq!(store.nodes("01S").unwrap().len(), 1500);
}

#[test]
fn a_damaged_database_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        store
            .create_run(&conformance::run_record("01A", RunStatus::Running), "")
            .unwrap();
        store.flush().unwrap();
    }
    for entry in std::fs::read_dir(&path).unwrap() {
        let file = entry.unwrap().path();
        if file.is_file() && file.file_name().unwrap() != OWNER_FILE {
            std::fs::write(&file, vec![0xA5; 4096]).unwrap();
        }
    }
    let error = SledStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        store.db.insert("schema_version", "99").unwrap();
        store.flush().unwrap();
    }
    let error = SledStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Schema { .. }), "{error}");
    {
        let store = SledStore::open(&dir.path().join("db2")).unwrap();
        store.db.insert("schema_version", "2").unwrap();
        store.flush().unwrap();
    }
    let error = SledStore::open(&dir.path().join("db2")).unwrap_err();
    assert!(matches!(error, StoreError::Schema { .. }), "{error}");
}
