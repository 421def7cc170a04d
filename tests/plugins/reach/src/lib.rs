//! Test plugin `reach`: does what its input's `mode` says with what the
//! node is granted, and returns what it saw.
//!
//! - `get`: `GET url` with optional `headers`; returns `status`, `body`
//!   (text) and `headers`, or fails with the client's error;
//! - `post`: `POST url` with `body` as JSON; returns like `get`;
//! - `read`: reads the file `path`; returns `text`;
//! - `write`: writes `text` to the file `path`;
//! - `env`: returns the environment as `vars` (name to value);
//! - `leak`: takes the secret `name` and, as `via` says, logs it, prints it,
//!   returns it or fails with it;
//! - `bearer`: `GET url` with `authorization: Bearer <secret name>`.

use std::collections::BTreeMap;

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{Value, json};
use flow_plugin_sdk::{ActionError, Context, Request, export_action, http, log, secret};

#[derive(Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde")]
struct Params {
    mode: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
    #[serde(default)]
    path: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    via: String,
}

fn shown(response: http::Response) -> Value {
    json!({
        "status": response.status,
        "body": String::from_utf8_lossy(&response.body),
        "headers": response.headers.into_iter().collect::<BTreeMap<_, _>>(),
    })
}

fn reach(_: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let p = request.input;
    let io = |e: std::io::Error| ActionError::fatal(format!("{}: {e}", p.path));
    match p.mode.as_str() {
        "get" => {
            let mut call = http::request("GET", &p.url);
            for (name, value) in &p.headers {
                call = call.header(name, value);
            }
            Ok(shown(call.send()?))
        }
        "post" => Ok(shown(http::post_json(&p.url, &p.body)?)),
        "read" => Ok(json!({ "text": std::fs::read_to_string(&p.path).map_err(io)? })),
        "write" => {
            std::fs::write(&p.path, &p.text).map_err(io)?;
            Ok(json!({}))
        }
        "env" => Ok(json!({ "vars": std::env::vars().collect::<BTreeMap<_, _>>() })),
        "leak" => {
            let value = secret(&p.name)?;
            match p.via.as_str() {
                "log" => log::info(&format!("the secret is {value}")),
                "print" => {
                    println!("stdout: {value}");
                    eprintln!("stderr: {value}");
                }
                "fail" => return Err(ActionError::fatal(format!("failing with {value}"))),
                _ => {}
            }
            Ok(json!({ "secret": value, "nested": { "list": [value.clone()] } }))
        }
        "bearer" => {
            let token = secret(&p.name)?;
            let response = http::request("GET", &p.url)
                .header("authorization", &format!("Bearer {token}"))
                .send()?;
            Ok(shown(response))
        }
        other => Err(ActionError::fatal(format!("unknown mode {other}"))),
    }
}

export_action! {
    name: "reach",
    description: "Reaches what its node is granted, for tests",
    run: reach,
}
