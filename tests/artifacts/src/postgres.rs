//! A PostgreSQL server of the tests' own: Debian's binaries, a data
//! directory in a new temporary directory, a free port on 127.0.0.1.
//!
//! One server serves a test process; each test asks it for a database of its
//! own. A watcher process stops the server and removes its directory when
//! the test process ends, however it ends: it waits on a pipe whose only
//! writer is the test process. Run as root, the server runs as the
//! `postgres` user (PostgreSQL refuses to run as root).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The user the server runs as when the tests run as root.
const SERVICE_USER: &str = "postgres";

/// The role the tests connect as (no password: trust, on loopback only).
pub const ROLE: &str = "flow";

/// A running PostgreSQL server.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Held open for the life of the test process: the watcher stops the
    /// server when it closes.
    _watcher: Mutex<(Child, ChildStdin)>,
    databases: AtomicU32,
}

/// The test process's server, started on first use.
///
/// # Panics
///
/// When PostgreSQL is not installed (`make postgres` installs it) or does
/// not start; the message says why.
pub fn server() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| Postgres::launch().unwrap_or_else(|why| panic!("{why}")))
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

/// The directory of `initdb` and `pg_ctl`: `FLOW_PG_BIN`, else the newest
/// of Debian's `/usr/lib/postgresql/<version>/bin`, else the `PATH`'s.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("FLOW_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output();
    match output {
        Ok(output) if output.status.success() => Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        )),
        _ => Err(
            "PostgreSQL is not installed: the tests start their own server from its binaries; \
             run `make postgres` (Debian's postgresql package) or set FLOW_PG_BIN"
                .into(),
        ),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("no free port on 127.0.0.1");
    listener
        .local_addr()
        .expect("a bound socket's address")
        .port()
}

/// A command run as the server's user.
fn as_service(program: &Path) -> Command {
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVICE_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {what}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

impl Postgres {
    fn launch() -> Result<Self, String> {
        let bin = bin_dir()?;
        let root = std::env::temp_dir().join(format!(
            "flow-test-postgres-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&root).map_err(|error| format!("{}: {error}", root.display()))?;
        if as_root() {
            let mut chown = Command::new("chown");
            chown.arg(format!("{SERVICE_USER}:")).arg(&root);
            run(chown, "chown of the test database directory")?;
        }
        let data = root.join("data");
        let mut initdb = as_service(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            ROLE,
        ]);
        run(initdb, "initdb")?;

        // The watcher: stops the server and removes its files once the
        // test process's end of the pipe closes.
        let script = format!(
            "read _; {} -D '{}' stop -m immediate >/dev/null 2>&1; rm -rf '{}'",
            shell_words(&as_service_words(&bin.join("pg_ctl"))),
            data.display(),
            root.display()
        );
        let mut watcher = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start the server's watcher: {error}"))?;
        let pipe = watcher.stdin.take().expect("piped stdin");

        let server = Self {
            bin,
            data,
            port: free_port(),
            _watcher: Mutex::new((watcher, pipe)),
            databases: AtomicU32::new(0),
        };
        server.start_server()?;
        Ok(server)
    }

    fn start_server(&self) -> Result<(), String> {
        let mut pg_ctl = as_service(&self.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                // TCP on loopback only: no socket file, whose path could
                // outgrow the limit under a long temporary directory.
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
                 -c max_connections=200",
                self.port
            ))
            .arg("start");
        run(pg_ctl, "pg_ctl start").map_err(|why| {
            let log = std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default();
            format!("{why}\n{log}")
        })
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database, by its address.
    pub fn database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::Relaxed)
        );
        self.query(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` on the database at `url` with psql; its rows, one per
    /// line, columns separated by `|`.
    ///
    /// While the server restarts (another test's [`Postgres::restart`]),
    /// psql is tried again.
    pub fn query(&self, url: &str, sql: &str) -> String {
        let mut tries = 0;
        loop {
            let output = Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
                .args([url, "-c", sql])
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|error| panic!("cannot run psql: {error}"));
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).trim().to_string();
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let restarting = ["connect", "connection", "shutting down", "starting up"]
                .iter()
                .any(|word| stderr.contains(word));
            tries += 1;
            assert!(restarting && tries < 300, "psql failed: {stderr}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Stops the server (fast: clients are disconnected) and starts it
    /// again on the same port, as an operator's restart would.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    /// Stops the server; clients are disconnected.
    pub fn stop(&self) {
        let mut stop = as_service(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-w", "stop", "-m", "fast"]);
        run(stop, "pg_ctl stop").unwrap_or_else(|why| panic!("{why}"));
    }

    /// Starts the stopped server again, on the same port.
    pub fn start(&self) {
        self.start_server().unwrap_or_else(|why| panic!("{why}"));
    }
}

fn as_service_words(program: &Path) -> Vec<String> {
    let mut words = Vec::new();
    if as_root() {
        words.extend(["runuser", "-u", SERVICE_USER, "--"].map(String::from));
    }
    words.push(program.display().to_string());
    words
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(mut watcher) = self._watcher.lock() {
            let _ = watcher.1.write_all(b"\n");
        }
    }
}
