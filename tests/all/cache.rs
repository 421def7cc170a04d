//! The compile cache: a second start does not compile again.

use crate::support::Env;

/// Two plugins: what is tested is the cache, not the compiler.
fn env() -> Env {
    let env = Env::empty();
    for name in ["echo", "math"] {
        env.add_example(name);
    }
    env
}

fn plugins(env: &Env, cache: &std::path::Path) -> serde_json::Value {
    let output = env
        .flow()
        .env("FLOW_CACHE_DIR", cache)
        .args(["plugins", "plugins", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn cached(listing: &serde_json::Value) -> Vec<bool> {
    listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cached"].as_bool().unwrap())
        .collect()
}

#[test]
fn a_second_start_loads_compiled_code_from_the_cache() {
    let env = env();
    let cache = env.path().join("cache");
    assert_eq!(
        cached(&plugins(&env, &cache)),
        [false; 2],
        "the first start compiles"
    );
    let count = |extension: &str| {
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == extension)
            })
            .count()
    };
    assert_eq!(count("cwasm"), 2, "one compiled file per plugin");
    assert_eq!(count("listing"), 2, "and what each describes");
    assert!(
        cache.join("functions").is_dir(),
        "and the compiled functions, for other components"
    );
    assert_eq!(
        cached(&plugins(&env, &cache)),
        [true; 2],
        "the second start compiles nothing"
    );
}

#[test]
fn a_damaged_cache_file_is_compiled_again() {
    let env = env();
    let cache = env.path().join("cache");
    plugins(&env, &cache);
    // Compiled components, listings and compiled functions alike.
    fn damage(dir: &std::path::Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                damage(&path);
            } else {
                std::fs::write(path, b"garbage").unwrap();
            }
        }
    }
    damage(&cache);
    let listing = plugins(&env, &cache);
    assert_eq!(cached(&listing), [false; 2]);
    assert_eq!(
        cached(&plugins(&env, &cache)),
        [true; 2],
        "and the cache is repaired"
    );
}

#[test]
fn no_cache_compiles_every_time_and_writes_nothing() {
    let env = env();
    let cache = env.path().join("cache");
    let output = env
        .flow()
        .env("FLOW_CACHE_DIR", &cache)
        .args(["--no-cache", "plugins", "plugins", "--json"])
        .output()
        .unwrap();
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cached(&listing), [false; 2]);
    assert!(!cache.exists());
}

#[test]
fn an_unwritable_cache_only_warns() {
    let env = env();
    let file = env.write("not-a-dir", "a file where the cache directory should be");
    let output = env
        .flow()
        .env("FLOW_CACHE_DIR", &file)
        .args(["plugins", "plugins"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot write the compile cache"),
        "{stderr}"
    );
}
