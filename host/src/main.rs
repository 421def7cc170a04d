//! `flow`: run TOML workflows of WebAssembly actions.
//!
//! This file parses the command line and sets up logging; the commands live
//! in `cli/`, and everything a library user would also need lives in the
//! `flow_host` library.

mod cli;

/// mimalloc instead of the C library's allocator: the engine and the
/// reading commands allocate many small records from several threads, and
/// a run of 100,000 nodes uses a tenth less CPU with it (see the README's
/// Performance). Without transparent huge pages (`no_thp`): with them a
/// sparsely used buffer holds memory 2 MiB at a time, and a run whose
/// nodes exchange a 20 MB output peaked 50 % higher. Freed large buffers go
/// back to the system by themselves (what
/// [`flow_host::runtime::return_large_buffers`] arranges with glibc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Runs workflows whose nodes are sandboxed WebAssembly components.
///
/// A workflow is a TOML file of nodes; each node names an action, a plugin
/// found in the plugins directory. Runs are recorded in an embedded
/// database, so `flow status` and `flow list` show them afterwards.
#[derive(Debug, Parser)]
#[command(name = "flow", version, about, long_about = None, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 success, 1 the run failed, 2 invalid input \
    (workflow, plugins, arguments), 3 the environment failed (database, files), \
    130 the run was cancelled."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// The run database (a directory) [default: ~/.local/share/flow/db]
    #[arg(
        long,
        global = true,
        env = "FLOW_DB",
        hide_env_values = true,
        value_name = "PATH"
    )]
    db: Option<PathBuf>,

    /// A PostgreSQL database to keep runs in instead, shared by several
    /// hosts: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
    #[arg(
        long,
        global = true,
        env = "FLOW_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    store: Option<String>,

    /// Where compiled plugins are cached [default: ~/.cache/flow/compiled]
    #[arg(
        long,
        global = true,
        env = "FLOW_CACHE_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    cache_dir: Option<PathBuf>,

    /// Compile plugins on every start instead of using the cache
    #[arg(long, global = true)]
    no_cache: bool,

    /// What to log on stderr: a level (error, warn, info, debug, trace) or
    /// filter directives such as `warn,flow::plugin=debug`. Default: warnings,
    /// and the plugins' own logs at info
    #[arg(
        long,
        global = true,
        env = "FLOW_LOG",
        hide_env_values = true,
        value_name = "FILTER"
    )]
    log_level: Option<String>,

    /// How log records are written on stderr
    #[arg(
        long,
        global = true,
        env = "FLOW_LOG_FORMAT",
        value_enum,
        value_name = "FORMAT",
        default_value_t = cli::logging::LogFormat::Text
    )]
    log_format: cli::logging::LogFormat,

    /// run, resume, validate: print only errors (the exit code tells the
    /// rest)
    #[arg(long, short, global = true)]
    quiet: bool,

    /// On errors, show their full internal detail (for bug reports)
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow and print each node's result and the outputs
    Run(cli::run::RunArgs),
    /// Check a workflow file and its actions without running anything
    Validate(cli::validate::ValidateArgs),
    /// Continue a run that crashed, was cancelled or failed
    Resume(cli::resume::ResumeArgs),
    /// Start a new run that reuses an earlier run's outputs: rerun from
    /// chosen nodes (--from), or only what did not succeed
    Retry(cli::retry::RetryArgs),
    /// Show a recorded run: its nodes, attempts, timings, errors and outputs
    Status(cli::status::StatusArgs),
    /// Print what the actions of a run logged and printed
    Logs(cli::logs::LogsArgs),
    /// Print a workflow's graph as Graphviz DOT or Mermaid
    Graph(cli::graph::GraphArgs),
    /// List recorded runs, newest first
    List(cli::list::ListArgs),
    /// Stop a run that a `flow serve` runs, or any run of a shared store
    Cancel(cli::manage::CancelArgs),
    /// Delete recorded runs
    Delete(cli::manage::DeleteArgs),
    /// Delete the runs older than a given age
    Prune(cli::manage::PruneArgs),
    /// List the plugins of a directory
    Plugins(cli::plugins::PluginsArgs),
    /// Serve the HTTP API (start, watch and steer runs from other
    /// programs) and run the workflows' cron schedules
    Serve(cli::serve::ServeArgs),
    /// Run attempts of the runs kept in a shared PostgreSQL store (--store),
    /// beside other workers on any host
    Worker(cli::worker::WorkerArgs),
    /// Make a bearer token for `flow serve --token-file`
    Token(cli::serve::TokenArgs),
    /// Print a shell completion script (bash, zsh, fish, ...)
    Completions(cli::completions::CompletionsArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // Hints repeat `--db` (`--store`) when it was typed, not when it came
    // from FLOW_DB (FLOW_STORE).
    let typed = |name: &str| {
        matches.value_source(name) == Some(ValueSource::CommandLine)
            || matches
                .subcommand()
                .is_some_and(|(_, sub)| sub.value_source(name) == Some(ValueSource::CommandLine))
    };
    let db_typed = typed("db") || typed("store");
    if typed("db") && typed("store") {
        cli::out::eprint("error: --db and --store name two run databases; give one");
        return cli::Exit::Invalid.into();
    }
    cli::panic::install(cli.global.verbose);
    if let Command::Completions(args) = &cli.command {
        return cli::completions::print::<Cli>(args).into();
    }
    let log = match cli::logging::init(
        cli.global.log_level.as_deref(),
        cli.global.log_format,
        cli.global.quiet,
    ) {
        Ok(log) => log,
        Err(error) => {
            cli::out::eprint(format_args!("error: {error}"));
            return cli::Exit::Invalid.into();
        }
    };
    let context = cli::Context {
        db_typed,
        db: cli.global.db,
        store: cli.global.store,
        cache_dir: cli.global.cache_dir,
        no_cache: cli.global.no_cache,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        log,
    };
    let result = match cli.command {
        Command::Run(args) => cli::run::run(&context, args),
        Command::Validate(args) => cli::validate::run(&context, args),
        Command::Resume(args) => cli::resume::run(&context, args),
        Command::Retry(args) => cli::retry::run(&context, args),
        Command::Status(args) => cli::status::run(&context, args),
        Command::Logs(args) => cli::logs::run(&context, args),
        Command::Graph(args) => cli::graph::run(&context, args),
        Command::List(args) => cli::list::run(&context, args),
        Command::Cancel(args) => cli::manage::cancel(&context, args),
        Command::Delete(args) => cli::manage::delete(&context, args),
        Command::Prune(args) => cli::manage::prune(&context, args),
        Command::Plugins(args) => cli::plugins::run(&context, args),
        Command::Serve(args) => cli::serve::run(&context, args),
        Command::Worker(args) => cli::worker::run(&context, args),
        Command::Token(args) => cli::serve::token(args),
        Command::Completions(_) => unreachable!("handled before logging is set up"),
    };
    match result {
        Ok(code) => code.into(),
        // The reader of stdout went away: stop quietly, like other tools.
        Err(error) if cli::out::is_broken_pipe(&error) => cli::Exit::Success.into(),
        Err(error) => {
            cli::out::eprint(cli::render_error(&error, &context));
            cli::exit_code(&error).into()
        }
    }
}
