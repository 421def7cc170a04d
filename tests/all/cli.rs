//! The command line itself: help, exit codes, bad storage.

use crate::support::{Env, Run, workflow};

#[test]
fn every_command_has_help() {
    let env = Env::empty();
    for command in [
        &["--help"][..],
        &["run", "--help"],
        &["validate", "--help"],
        &["status", "--help"],
        &["list", "--help"],
        &["plugins", "--help"],
        &["resume", "--help"],
        &["logs", "--help"],
        &["graph", "--help"],
        &["delete", "--help"],
        &["prune", "--help"],
    ] {
        let run = env.run(command).success();
        assert!(
            run.stdout.contains("Usage: flow"),
            "{command:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn validate_reports_levels_and_plugins() {
    let env = Env::new();
    let file = env.write(
        "ok.toml",
        &workflow(
            "[nodes.a]\naction = \"echo\"\n[nodes.b]\naction = \"echo\"\ndepends_on = [\"a\"]\n",
        ),
    );
    let run = env.run(&["validate", file.to_str().unwrap()]).success();
    assert!(
        run.stdout
            .contains("workflow `test` is valid: 2 nodes in 2 levels"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  level 0: a\n  level 1: b\n"),
        "{}",
        run.stdout
    );
    assert!(
        env.run(&["list"])
            .success()
            .stdout
            .starts_with("no runs recorded"),
        "validate runs nothing"
    );
}

#[test]
fn a_missing_workflow_file_is_invalid_input() {
    let env = Env::empty();
    let run = env.run(&["run", "nope.toml"]).expect_code(2);
    assert!(
        run.stderr
            .starts_with("error: cannot read workflow file nope.toml: "),
        "{}",
        run.stderr
    );
}

#[test]
fn a_workflow_without_plugins_says_how_to_give_them() {
    let env = Env::empty();
    let file = env.write(
        "w.toml",
        "[workflow]\nid = \"w\"\n[nodes.a]\naction = \"echo\"\n",
    );
    let run = env.run(&["run", file.to_str().unwrap()]).expect_code(2);
    assert!(
        run.stderr
            .contains("does not say where its plugins are: add `plugins = \"DIR\"`"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_runs_are_invalid_input() {
    let env = Env::empty();
    let run = env.run(&["status", "01NOPE"]).expect_code(2);
    assert_eq!(
        run.stderr,
        "error: no run with id `01NOPE`; `flow list` shows the runs\n"
    );
}

#[test]
fn a_database_path_that_is_a_file_is_an_environment_error() {
    let env = Env::new();
    let db = env.write("db-file", "not a database");
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let output = env
        .flow()
        .env("FLOW_DB", &db)
        .args(["run", file.to_str().unwrap()])
        .output();
    let run = Run::from(output.unwrap()).expect_code(3);
    assert!(
        run.stderr
            .contains("is not a flow run database: it is a file; the run database is a directory"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_second_writer_gets_a_clear_message() {
    let env = Env::new();
    // Hold the database the way a running `flow` does.
    let db = flow_host::SledStore::open(&env.path().join("db")).unwrap();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let run = env.run(&["run", file.to_str().unwrap()]).expect_code(3);
    assert!(
        run.stderr.contains("is in use by another flow process"),
        "{}",
        run.stderr
    );
    drop(db);
}
