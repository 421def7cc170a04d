//! Managing recorded runs: list filters, delete, prune; bad databases.

use crate::support::{Env, Run, workflow};

fn run_ids(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["list", "--json"];
    all.extend_from_slice(args);
    let list = env.run(&all).success().json();
    list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_filters_by_workflow_and_status_newest_first() {
    let env = Env::new();
    let good = env.write("good.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let bad = env.write(
        "bad.toml",
        &workflow("[nodes.a]\naction = \"flaky\"\ninput = { fatal = \"no\" }\n")
            .replace("id = \"test\"", "id = \"other\""),
    );
    let first = env
        .run(&["run", good.to_str().unwrap(), "--json"])
        .success()
        .json()["run_id"]
        .clone();
    let second = env
        .run(&["run", bad.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json()["run_id"]
        .clone();
    let third = env
        .run(&["run", good.to_str().unwrap(), "--json"])
        .success()
        .json()["run_id"]
        .clone();

    assert_eq!(
        run_ids(&env, &[]),
        [&third, &second, &first].map(|v| v.as_str().unwrap().to_string())
    );
    assert_eq!(
        run_ids(&env, &["--workflow", "other"]),
        [second.as_str().unwrap()]
    );
    assert_eq!(
        run_ids(&env, &["--status", "succeeded"]),
        [&third, &first].map(|v| v.as_str().unwrap().to_string())
    );
    assert_eq!(
        run_ids(&env, &["--status", "failed", "--workflow", "test"]),
        Vec::<String>::new()
    );
    assert_eq!(run_ids(&env, &["--limit", "1"]), [third.as_str().unwrap()]);
    let bad_status = env.run(&["list", "--status", "sideways"]).expect_code(2);
    assert!(
        bad_status
            .stderr
            .contains("expected one of running, succeeded, failed, cancelled, interrupted")
    );

    let table = env.run(&["list", "--status", "failed"]).success().stdout;
    assert!(
        table.starts_with("RUN") && table.contains("other") && table.contains("failed"),
        "{table}"
    );
}

#[test]
fn delete_removes_runs_and_refuses_unknown_ids_first() {
    let env = Env::new();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let a = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json()["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    let refused = env.run(&["delete", &a, "01NOSUCHRUN"]).expect_code(2);
    assert!(refused.stderr.contains("no run with id `01NOSUCHRUN`"));
    assert_eq!(
        run_ids(&env, &[]).len(),
        2,
        "nothing deleted when one id is wrong"
    );

    let deleted = env.run(&["delete", &a]).success();
    assert!(
        deleted
            .stdout
            .contains(&format!("deleted run {a} of workflow `test`"))
    );
    assert_eq!(run_ids(&env, &[]), [b]);
    env.run(&["status", &a]).expect_code(2);
}

#[test]
fn prune_deletes_only_old_runs() {
    let env = Env::new();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    env.run(&["run", file.to_str().unwrap()]).success();
    env.run(&["run", file.to_str().unwrap()]).success();

    let kept = env.run(&["prune", "--older-than", "1h"]).success();
    assert!(
        kept.stdout
            .starts_with("deleted 0 runs that started before "),
        "{}",
        kept.stdout
    );
    let dry = env
        .run(&["prune", "--older-than", "0s", "--dry-run"])
        .success();
    assert!(
        dry.stdout.starts_with("would delete 2 runs"),
        "{}",
        dry.stdout
    );
    assert_eq!(run_ids(&env, &[]).len(), 2);
    let pruned = env.run(&["prune", "--older-than", "0s"]).success();
    assert!(
        pruned.stdout.starts_with("deleted 2 runs"),
        "{}",
        pruned.stdout
    );
    assert!(run_ids(&env, &[]).is_empty());
    env.run(&["prune", "--older-than", "soon"]).expect_code(2);
}

fn with_db(env: &Env, db: &str, args: &[&str]) -> Run {
    Run::from(env.flow().env("FLOW_DB", db).args(args).output().unwrap())
}

#[test]
fn an_unwritable_database_is_an_environment_error() {
    let env = Env::new();
    let run = with_db(&env, "/proc/flow-db", &["list"]).expect_code(3);
    assert!(run.stderr.starts_with("error: cannot "), "{}", run.stderr);
    assert!(run.stderr.contains("/proc/flow-db"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_damaged_database_is_an_environment_error() {
    let env = Env::new();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    env.run(&["run", file.to_str().unwrap()]).success();
    let db = env.path().join("db");
    for entry in std::fs::read_dir(&db).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, vec![0x5A; 8192]).unwrap();
        }
    }
    let run = env.run(&["list"]).expect_code(3);
    assert!(
        run.stderr.contains("cannot open the run database"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_second_process_is_told_which_process_holds_the_database() {
    let env = Env::new();
    let file = env.write(
        "sleepy.toml",
        &workflow(
            "[nodes.nap]\naction = \"misbehave\"\ninput = { mode = \"sleep\", ms = 600000 }\n",
        ),
    );
    let mut child = env
        .flow()
        .args(["run", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut header = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut header,
    )
    .unwrap();
    let list = env.run(&["list"]).expect_code(3);
    assert!(
        list.stderr
            .contains("is in use by another flow process (process "),
        "{}",
        list.stderr
    );
    assert!(
        list.stderr
            .contains(&format!("process {} since", child.id())),
        "{}",
        list.stderr
    );
    assert!(list.stderr.contains("run sleepy.toml"), "{}", list.stderr);
    child.kill().unwrap();
    child.wait().unwrap();
}
