//! Plugins in Rust, Python and JavaScript, built from source by the test
//! build, passing JSON to each other in one workflow.

use serde_json::json;

use crate::support::{Env, node};

#[test]
fn rust_python_and_javascript_nodes_pass_json_to_each_other() {
    let env = Env::with_languages();
    let report = env.run_example("mixed.toml");

    assert_eq!(
        node(&report, "note_words")["output"],
        json!({"words": 13, "distinct": 9, "characters": 72, "longest": "engine", "top": [["the", 3], ["engine", 2]]})
    );
    let digest = node(&report, "digest")["output"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        report["outputs"]["letter"]["text"],
        format!(
            "Dear Ada Lovelace (UK), your 4 items come to 52.75. Your note has 13 words; \
             the most frequent is \"the\". Reference {digest}."
        )
    );

    // The plugins describe themselves like any other.
    let listing = env.run(&["plugins", "plugins", "--json"]).success().json();
    let described: Vec<(&str, &str)> = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["description"].as_str().unwrap(),
            )
        })
        .filter(|(name, _)| ["words", "template"].contains(name))
        .collect();
    assert_eq!(
        described,
        [
            ("template", "Fills a text template with values"),
            ("words", "Word statistics of a text")
        ]
    );
}

#[test]
fn python_and_javascript_errors_map_to_retryable_and_fatal() {
    let env = Env::with_languages();
    let file = env.write(
        "errors.toml",
        "[workflow]\nid = \"errors\"\nplugins = \"plugins\"\n[defaults]\ncontinue_on_error = true\n\
         [nodes.py]\naction = \"words\"\ninput = { text = 5 }\n\
         [nodes.js]\naction = \"template\"\ninput = { template = \"{{ missing.value }}\" }\n",
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        node(&report, "py")["error"]["message"],
        "fatal error: the text must be a string, not int"
    );
    assert_eq!(
        node(&report, "js")["error"]["message"],
        "fatal error: the template refers to `missing.value`, but there is nothing at `missing`"
    );
}
