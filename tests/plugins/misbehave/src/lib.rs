//! Test plugin `misbehave`: does what a plugin must not, on request.
//!
//! Input `mode`:
//! - `loop`: spins forever (fuel or the wall clock must end it);
//! - `sleep`: blocks in a host call for `ms` milliseconds (on the first
//!   attempt only, with `first_attempt_only`);
//! - `alloc`: allocates and touches memory without bound;
//! - `panic`: panics with `message`;
//! - `overflow`: recurses until the stack overflows;
//! - `print`: writes `bytes` bytes to stdout and to stderr, then succeeds;
//! - `log`: sends `count` log records (`message`, or `bytes` bytes), then
//!   succeeds;
//! - `sandbox`: reports what it can see of the host: environment, files,
//!   network, stdin, arguments;
//! - `inspect`: returns the request it received: input, dependency outputs
//!   and dependency errors;
//! - `exit`: exits with `code` (WASI `exit`) instead of returning;
//! - `deep`: recurses with frames in linear memory until the stack, which
//!   lives there too, runs out;
//! - `raw`: returns `text` as its output, exactly (JSON or not), repeated
//!   `count` times (once when 0);
//! - `nest`: returns `count` nested arrays;
//! - `big`: returns a JSON string of `bytes` characters;
//! - `fail`: fails (fatal) with `message` repeated `count` times.

use std::hint::black_box;
use std::io::{Read, Write};

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{self as serde_json, Value, json};

use flow_plugin_sdk::{ActionError, Context, JsonOutput, Request, export_action, log};

#[derive(Clone, Copy, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", rename_all = "lowercase")]
enum Mode {
    Loop,
    Sleep,
    Alloc,
    Panic,
    Overflow,
    Print,
    Log,
    Sandbox,
    Inspect,
    Exit,
    Deep,
    Raw,
    Nest,
    Big,
    Fail,
}

#[derive(Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
struct Params {
    mode: Mode,
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    bytes: usize,
    #[serde(default)]
    count: usize,
    #[serde(default)]
    message: String,
    /// With `sleep`: sleep on the first attempt only.
    #[serde(default)]
    first_attempt_only: bool,
    #[serde(default)]
    code: i32,
    #[serde(default)]
    text: String,
}

fn misbehave(ctx: &Context, request: Request<Params>) -> Result<JsonOutput, ActionError> {
    let params = &request.input;
    let value = |value: Value| JsonOutput::new(value.to_string());
    match params.mode {
        Mode::Exit => std::process::exit(params.code),
        Mode::Deep => Ok(value(json!({"depth": deep(black_box(1))}))),
        // Handed to the host as it is: not JSON at all, or JSON the host
        // should refuse.
        Mode::Raw => Ok(JsonOutput::new(params.text.repeat(params.count.max(1)))),
        Mode::Nest => Ok(JsonOutput::new(format!(
            "{}{}",
            "[".repeat(params.count),
            "]".repeat(params.count)
        ))),
        Mode::Big => Ok(value(Value::String("x".repeat(params.bytes)))),
        Mode::Fail => Err(ActionError::fatal(
            params.message.repeat(params.count.max(1)),
        )),
        _ => behave(ctx, request).map(value),
    }
}

/// Recursion whose frames live in linear memory (a buffer the compiler
/// cannot remove), so that Rust's stack there runs out.
#[allow(unconditional_recursion)]
fn deep(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    black_box(deep(black_box(depth + 1))) ^ frame[(depth % 64) as usize]
}

fn behave(ctx: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let params = &request.input;
    match params.mode {
        Mode::Loop => {
            let mut x: u64 = 0;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        Mode::Sleep => {
            let ms = if params.first_attempt_only && ctx.attempt > 1 {
                0
            } else {
                params.ms
            };
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(json!({"slept_ms": ms}))
        }

        Mode::Alloc => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                blocks.push(vec![1u8; 1 << 20]);
                black_box(&blocks);
            }
        }
        Mode::Panic => panic!("{}", params.message),
        Mode::Overflow => Ok(json!({"depth": recurse(black_box(1))})),
        Mode::Print => {
            let chunk = vec![b'x'; params.bytes];
            std::io::stdout().write_all(&chunk).ok();
            std::io::stderr().write_all(&chunk).ok();
            println!();
            Ok(json!({"printed": params.bytes}))
        }
        Mode::Log => {
            let message = match params.message.as_str() {
                "" => "y".repeat(params.bytes),
                text => text.to_string(),
            };
            for _ in 0..params.count {
                log::info(&message);
            }
            Ok(json!({"logged": params.count}))
        }
        Mode::Sandbox => Ok(sandbox()),
        Mode::Exit | Mode::Deep | Mode::Raw | Mode::Nest | Mode::Big | Mode::Fail => {
            unreachable!("handled by misbehave")
        }
        Mode::Inspect => {
            let deps: serde_json::Map<String, Value> = request
                .deps
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let errors: serde_json::Map<String, Value> = request
                .deps
                .errors()
                .map(|(k, e)| (k.to_string(), Value::from(e)))
                .collect();
            Ok(json!({"deps": deps, "errors": errors}))
        }
    }
}

/// Recursion whose frames live on the WebAssembly call stack (no locals in
/// linear memory), so that the engine's stack limit is what stops it.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1))) ^ depth
}

fn sandbox() -> Value {
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let root = std::fs::read_dir("/")
        .map(|d| d.count())
        .map_err(|e| e.to_string());
    let file = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string());
    let tcp = std::net::TcpStream::connect("127.0.0.1:22").map_err(|e| e.to_string());
    let mut stdin = String::new();
    let stdin_read = std::io::stdin().read_to_string(&mut stdin);
    json!({
        "env": env,
        "args": args,
        "read_dir": root.is_ok(),
        "read_file": file.is_ok(),
        "tcp_connect": tcp.is_ok(),
        "stdin": stdin_read.map(|_| stdin).unwrap_or_default(),
    })
}

export_action! {
    name: "misbehave",
    description: "Loops, sleeps, allocates, panics or overflows on request",
    run: misbehave,
}
