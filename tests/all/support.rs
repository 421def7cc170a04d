//! Test helpers: a scratch directory with plugins, a database and a compile
//! cache, and a way to run the real `flow` binary in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// The example plugins.
pub const EXAMPLES: &[&str] = &["echo", "files", "hash", "http", "json", "math"];

/// A scratch directory for one test.
pub struct Env {
    dir: tempfile::TempDir,
    /// A PostgreSQL database that `flow` keeps runs in instead of the
    /// directory's sled database.
    store: Option<String>,
}

impl Env {
    /// A directory whose `plugins/` holds the example and test plugins.
    pub fn new() -> Self {
        let env = Self::empty();
        for name in EXAMPLES {
            env.add_example(name);
        }
        for name in ["flaky", "misbehave"] {
            env.add_test_plugin(name);
        }
        env
    }

    /// [`Env::new`] plus the Python (`words`) and JavaScript (`template`)
    /// example plugins.
    pub fn with_languages() -> Self {
        let env = Self::new();
        for name in ["words", "template"] {
            env.add_example(name);
        }
        env
    }

    /// A directory with an empty `plugins/`.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        Self { dir, store: None }
    }

    /// Keeps runs in a new database of the tests' PostgreSQL server.
    pub fn on_postgres(mut self) -> Self {
        self.store = Some(flow_test_artifacts::postgres::server().database());
        self
    }

    /// The PostgreSQL database's address, when runs are kept in one.
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its plugins directory.
    pub fn plugins(&self) -> PathBuf {
        self.path().join("plugins")
    }

    /// Copies a plugin into the plugins directory, once it is in the
    /// shared compile cache (see [`compile_once`]).
    pub fn add_plugin(&self, file: &Path) {
        compile_once(file);
        self.copy_plugin(file);
    }

    /// Adds the example plugin `name` (see [`Env::add_plugin`]).
    pub fn add_example(&self, name: &str) {
        self.add_plugin(&flow_test_artifacts::plugins_dir().join(format!("{name}.wasm")));
    }

    /// Adds the test plugin `name` (see [`Env::add_plugin`]).
    pub fn add_test_plugin(&self, name: &str) {
        self.add_plugin(&flow_test_artifacts::test_plugins_dir().join(format!("{name}.wasm")));
    }

    fn copy_plugin(&self, file: &Path) {
        let name = file.file_name().unwrap();
        std::fs::copy(file, self.plugins().join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", file.display()));
    }

    /// Writes a file (e.g. a workflow) into the scratch directory and
    /// returns its path relative to it, where `flow` runs, so that
    /// messages show short paths.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        std::fs::write(self.path().join(name), contents).unwrap();
        PathBuf::from(name)
    }

    /// The `flow` command, run in the scratch directory with its own
    /// database and a compile cache shared by the tests.
    pub fn flow(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flow"));
        command
            .current_dir(self.path())
            .env("FLOW_CACHE_DIR", shared_cache())
            .env_remove("FLOW_LOG")
            .env_remove("RUST_LOG")
            .env_remove("FLOW_PLUGINS");
        match &self.store {
            Some(url) => command.env("FLOW_STORE", url).env_remove("FLOW_DB"),
            None => command
                .env("FLOW_DB", self.path().join("db"))
                .env_remove("FLOW_STORE"),
        };
        command
    }

    /// `flow run examples/NAME --json` with this scratch directory's
    /// plugins; the report, once the run succeeded.
    #[track_caller]
    pub fn run_example(&self, name: &str) -> Value {
        let example = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name);
        self.run(&[
            "run",
            example.to_str().unwrap(),
            "--json",
            "--plugins",
            self.plugins().to_str().unwrap(),
        ])
        .success()
        .json()
    }

    /// Runs a workflow of `nodes` whose failures are allowed
    /// (`continue_on_error`), with these environment variables and extra
    /// arguments; the `--json` report.
    #[track_caller]
    pub fn run_nodes(&self, nodes: &str, vars: &[(&str, &str)], extra: &[&str]) -> Value {
        let text = workflow(&format!("[defaults]\ncontinue_on_error = true\n\n{nodes}"));
        let file = self.write("nodes.toml", &text);
        let output = self
            .flow()
            .envs(vars.iter().copied())
            .args(["run", file.to_str().unwrap(), "--json"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr))
        })
    }

    /// Polls `flow status RUN --json` until `done` holds for it (two
    /// minutes at most), and returns that status.
    #[track_caller]
    pub fn wait_for_status(
        &self,
        run_id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let status = self.run(&["status", run_id, "--json"]);
            if status.code == 0 {
                let report = status.json();
                if done(&report) {
                    return report;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never {what}: {}",
                status.stdout
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Runs `flow` with these arguments.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.flow().args(args).output().expect("cannot start flow"))
    }
}

/// Starts `command` (a `flow run`) with its stdout piped, and returns it
/// once its first line (the run's header) is out, with the run's id.
pub fn spawn_run(mut command: Command) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cannot start flow");
    let mut header = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut header)
        .unwrap();
    let run_id = header
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("not a run header: {header:?}"))
        .to_string();
    (child, run_id)
}

/// Everything a child started with its stderr piped writes there, until
/// it closes it.
pub fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read as _;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// Compiled plugins shared by all tests, so each plugin compiles once:
/// where `flow` keeps its compile cache by default when [`cache_home`] is
/// its `XDG_CACHE_HOME`, for tests that run a program which does.
pub fn shared_cache() -> PathBuf {
    cache_home().join("flow").join("compiled")
}

/// The `XDG_CACHE_HOME` under which the default compile cache is the
/// [`shared_cache`].
pub fn cache_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The example plugins' directory, once each of its plugins is in the
/// shared cache (see [`compile_once`]): for tests that load them all.
pub fn example_plugins() -> PathBuf {
    let dir = flow_test_artifacts::plugins_dir().to_path_buf();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            compile_once(&path);
        }
    }
    dir
}

/// Compiles a plugin into the [`shared_cache`] unless a test of this
/// process did: the first test to add it compiles it while the others that
/// add it wait, as tests that start together would otherwise all compile
/// the same plugins at once. Only warms the cache: a plugin that does not
/// load is for the test's own run to report.
fn compile_once(file: &Path) {
    static COMPILED: Mutex<BTreeMap<PathBuf, Arc<OnceLock<()>>>> = Mutex::new(BTreeMap::new());
    let compiled = COMPILED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(file.to_path_buf())
        .or_default()
        .clone();
    compiled.get_or_init(|| {
        let scratch = Env::empty();
        scratch.copy_plugin(file);
        scratch
            .flow()
            .args(["plugins", "plugins"])
            .output()
            .unwrap();
    });
}

/// What a `flow` command did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics unless the exit code is `code`, showing the output.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        self.expect_code(0)
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A workflow file with the header every test uses.
pub fn workflow(nodes: &str) -> String {
    format!("[workflow]\nid = \"test\"\nplugins = \"plugins\"\n\n{nodes}")
}

/// The node called `id` in a `flow run --json` report.
#[track_caller]
pub fn node<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {report}"))
}

/// The engine's parts for library tests: a runtime and the plugins of a
/// fresh [`Env`] (kept alive by the returned value).
pub struct Library {
    /// Holds the plugins' directory for as long as the library is used.
    _scratch: Env,
    pub runtime: std::sync::Arc<flow_host::Runtime>,
    pub plugins: std::sync::Arc<flow_host::PluginRegistry>,
}

impl Library {
    pub async fn new() -> Self {
        let env = Env::new();
        let runtime = std::sync::Arc::new(
            flow_host::Runtime::new(flow_host::RuntimeConfig::default()).unwrap(),
        );
        let cache = flow_host::CompileCache::open(runtime.engine(), shared_cache()).unwrap();
        let plugins = std::sync::Arc::new(
            runtime
                .load_plugins(&[env.plugins()], &cache)
                .await
                .unwrap(),
        );
        Self {
            _scratch: env,
            runtime,
            plugins,
        }
    }

    /// A validated workflow from TOML text.
    pub fn workflow(&self, text: &str) -> std::sync::Arc<flow_host::WorkflowSpec> {
        std::sync::Arc::new(
            flow_host::WorkflowSpec::parse(Path::new("test.toml"), text.to_string())
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    /// An engine over an in-memory store.
    pub fn engine(
        &self,
    ) -> (
        flow_host::WorkflowEngine,
        std::sync::Arc<flow_host::MemoryStore>,
    ) {
        let store = std::sync::Arc::new(flow_host::MemoryStore::new());
        (
            flow_host::WorkflowEngine::new(self.runtime.clone(), store.clone()),
            store,
        )
    }
}
