//! Golden tests: every `tests/ui/*.toml` is a bad workflow; `flow validate`
//! must fail with exit code 2 and print exactly `tests/ui/<name>.stderr`.
//! Run with `BLESS=1` to rewrite the expectations after a deliberate change.

use std::path::Path;

use crate::support::Env;

#[test]
fn bad_workflows_have_golden_errors() {
    let env = Env::new();
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&ui)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the golden cases are missing");

    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let output = env
            .flow()
            .current_dir(&ui)
            .args(["validate", name, "--plugins"])
            .arg(env.plugins())
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let expected_path = case.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if output.status.code() != Some(2) || stderr != expected {
            failures.push(format!(
                "{name}: exit {:?}\n--- expected\n{expected}--- got\n{stderr}",
                output.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
