//! `files`: reads a text, JSON or CSV file from a directory the node is
//! granted, or writes JSON or text to a writable one.
//!
//! Input: `op` (`read`, `write` or `list`) and `path` (a path the node
//! sees, under a guest path of its `files` grants). `format` (`text`,
//! `json` or `csv`) defaults to the file's extension, else text.
//!
//! - `read`: text as `{"text": ...}`; JSON as the document; CSV (a header
//!   row, then records) as `{"rows": [{column: value}], "columns": {column:
//!   [values]}}`, numbers as numbers.
//! - `write`: the document `content`, or the output of `from` (a reference
//!   `"node/json/pointer"` into a dependency's output): JSON pretty-printed,
//!   or a string as it is; returns `{"path": ..., "bytes": N}`.
//! - `list`: `{"entries": [names]}`, sorted.
//!
//! ```toml
//! [nodes.sales]
//! action = "files"
//! input = { op = "read", path = "/data/sales.csv" }
//! files = [{ host = "data", guest = "/data" }]
//! ```

use std::path::Path;

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{self as serde_json, Map, Number, Value, json};
use flow_plugin_sdk::{ActionError, Context, Request, export_action};

/// The node's `input` table.
#[derive(Debug, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Params {
    /// What to do.
    pub op: Op,
    /// The file or directory, as the node sees it.
    pub path: String,
    /// How to read or write it.
    pub format: Option<Format>,
    /// What to write.
    pub content: Option<Value>,
    /// Where to take what to write from.
    pub from: Option<String>,
}

/// What `files` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", rename_all = "lowercase")]
pub enum Op {
    /// Read a file.
    Read,
    /// Write a file.
    Write,
    /// List a directory.
    List,
}

/// How a file is read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", rename_all = "lowercase")]
pub enum Format {
    /// As text.
    Text,
    /// As a JSON document.
    Json,
    /// As CSV with a header row.
    Csv,
}

fn format_of(params: &Params) -> Format {
    params.format.unwrap_or_else(|| {
        match Path::new(&params.path).extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ => Format::Text,
        }
    })
}

/// CSV text as rows and columns; cells that read as numbers are numbers.
pub fn parse_csv(text: &str) -> Result<Value, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    let mut columns: Vec<Vec<Value>> = vec![Vec::new(); header.len()];
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("record {}: {e}", line + 1))?;
        let mut row = Map::new();
        for (i, name) in header.iter().enumerate() {
            let cell = record.get(i).unwrap_or("");
            let value = cell_value(cell);
            columns[i].push(value.clone());
            row.insert(name.clone(), value);
        }
        rows.push(Value::Object(row));
    }
    let columns: Map<String, Value> = header
        .into_iter()
        .zip(columns)
        .map(|(name, values)| (name, Value::Array(values)))
        .collect();
    Ok(json!({ "rows": rows, "columns": columns }))
}

fn cell_value(cell: &str) -> Value {
    let trimmed = cell.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Value::Number(n.into());
    }
    match trimmed.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) if !trimmed.is_empty() => Value::Number(n),
        _ => Value::String(cell.to_string()),
    }
}

fn run(_: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let params = &request.input;
    let path = &params.path;
    let io = |what: &str, e: std::io::Error| {
        ActionError::fatal(format!(
            "cannot {what} {path}: {e} (is it under a guest path of the node's `files`{}?)",
            if what == "write" {
                " with write = true"
            } else {
                ""
            }
        ))
    };
    match params.op {
        Op::Read => {
            let text = std::fs::read_to_string(path).map_err(|e| io("read", e))?;
            match format_of(params) {
                Format::Text => Ok(json!({ "text": text })),
                Format::Json => serde_json::from_str(&text)
                    .map_err(|e| ActionError::fatal(format!("{path} is not JSON: {e}"))),
                Format::Csv => parse_csv(&text)
                    .map_err(|e| ActionError::fatal(format!("{path} is not CSV: {e}"))),
            }
        }
        Op::Write => {
            let content = match (&params.content, &params.from) {
                (Some(content), None) => content.clone(),
                (None, Some(from)) => request.deps.resolve(from)?.clone(),
                _ => return Err(ActionError::fatal("give `content` or `from`, exactly one")),
            };
            let text = match (&content, format_of(params)) {
                (Value::String(text), Format::Text) => text.clone(),
                (value, _) => serde_json::to_string_pretty(value)
                    .map_err(|e| ActionError::fatal(e.to_string()))?,
            };
            std::fs::write(path, &text).map_err(|e| io("write", e))?;
            Ok(json!({ "path": path, "bytes": text.len() }))
        }
        Op::List => {
            let mut entries: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| io("list", e))?
                .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
                .collect();
            entries.sort();
            Ok(json!({ "entries": entries }))
        }
    }
}

export_action! {
    name: "files",
    description: "Reads text, JSON and CSV files from granted directories, and writes JSON or text",
    run: run,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_becomes_rows_and_columns_with_numbers() {
        let value = parse_csv("region,amount\neu,12.5\nus,3\n\"a, b\",x\n").unwrap();
        assert_eq!(value["rows"][0], json!({"region": "eu", "amount": 12.5}));
        assert_eq!(value["columns"]["amount"], json!([12.5, 3, "x"]));
        assert_eq!(value["rows"][2]["region"], "a, b");
    }

    #[test]
    fn ragged_csv_is_an_error() {
        assert!(parse_csv("a,b\n1\n").unwrap_err().starts_with("record 1"));
    }
}
