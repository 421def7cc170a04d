//! Expressions in workflow files: jq programs, run by jaq.
//!
//! A node's `input` may hold templates, `"${{ deps.fetch.body.user }}"`,
//! and its `input_jq` and `when` are jq programs. Every program is parsed
//! and compiled when the workflow is validated ([`Expr::compile`]) and run
//! over the node's context, `{input, deps, run}`, when the node is about to
//! start. jq's standard library is there, except what would reach outside
//! the expression: `env` and `$ENV` (the host's environment), `input` and
//! `inputs`, `debug`, `stderr`, `halt` and `halt_error`; and a definition
//! that calls itself, since a recursion without end would overflow the
//! host's stack.

mod recursion;
mod template;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;

pub use template::{Template, TemplateError, to_json};

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// Names of jq's standard filters an expression may not use: they read the
/// host's environment, read input, write to the host's stderr, or stop the
/// process.
const DENIED: &[&str] = &[
    "env",
    "input",
    "inputs",
    "debug",
    "debug_empty",
    "stderr",
    "stderr_empty",
    "halt",
    "halt_error",
];

/// Programs kept compiled by [`Expr::compile`].
const MAX_CACHED: usize = 4096;

/// A compiled jq program.
#[derive(Clone)]
pub struct Expr {
    code: Arc<str>,
    filter: Arc<Filter>,
    /// For a program that is a plain path (`.deps.fetch.body`): its keys,
    /// looked up without jq's machinery (the common case of a template
    /// costs a tenth as much).
    path: Option<Arc<[Val]>>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.code).finish()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
    }
}

/// A program that does not compile: what is wrong, and where in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the program.
    pub offset: usize,
}

impl Expr {
    /// Parses and compiles `code`. A program compiled before in this
    /// process is shared, not compiled again: workflows repeat the same
    /// expressions over many nodes, and compiling one costs most of a
    /// millisecond (jq's standard library with it).
    pub fn compile(code: &str) -> Result<Self, SyntaxError> {
        static COMPILED: LazyLock<Mutex<HashMap<Box<str>, Expr>>> = LazyLock::new(Mutex::default);
        let compiled = || COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(expr) = compiled().get(code).cloned() {
            return Ok(expr);
        }
        let expr = Self::compile_new(code)?;
        let mut programs = compiled();
        // Bounded: a process that sees ever new programs (a server) starts
        // over rather than growing.
        if programs.len() >= MAX_CACHED {
            programs.clear();
        }
        programs.insert(code.into(), expr.clone());
        Ok(expr)
    }

    fn compile_new(code: &str) -> Result<Self, SyntaxError> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .filter(|def| !DENIED.contains(&def.name));
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .filter(|(name, _, _)| !DENIED.contains(name));
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| load_error(code, errors))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| compile_error(code, errors))?;
        if let Some(name) = recursion::recursive_def(code) {
            let offset = code.find(&format!("def {name}")).unwrap_or(0);
            return Err(SyntaxError {
                message: format!(
                    "`{name}` calls itself: recursive definitions are not allowed in workflow expressions (use jq's `recurse`, `reduce` or `until`)"
                ),
                offset,
            });
        }
        Ok(Self {
            code: code.into(),
            filter: Arc::new(filter),
            path: plain_path(code),
        })
    }

    /// The program's text.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Runs the program over `input`: every value it yields, or the first
    /// error.
    pub fn run(&self, input: Val) -> Result<Vec<Val>, String> {
        if let Some(value) = self.follow(&input) {
            return Ok(vec![value]);
        }
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut values = Vec::new();
        for value in self.filter.id.run((ctx, input)) {
            match value {
                Ok(value) => values.push(value),
                Err(exception) => {
                    return Err(match exception.get_err() {
                        Ok(error) => error.to_string(),
                        Err(_) => "the program stopped the evaluation".to_string(),
                    });
                }
            }
        }
        Ok(values)
    }

    /// A plain path's value, looked up directly: `null` past a missing key
    /// or a `null`, as jq gives. `None` when the program is not a plain
    /// path or meets a value that is neither an object nor `null` (jq then
    /// runs, and says what is wrong).
    fn follow(&self, input: &Val) -> Option<Val> {
        let mut value = input;
        for key in self.path.as_deref()? {
            value = match value {
                Val::Obj(object) => object.get(key).unwrap_or(&Val::Null),
                Val::Null => return Some(Val::Null),
                _ => return None,
            };
        }
        Some(value.clone())
    }

    /// Runs the program over `input`; it must yield exactly one value.
    pub fn run_one(&self, input: Val) -> Result<Val, String> {
        if let Some(value) = self.follow(&input) {
            return Ok(value);
        }
        let mut values = self.run(input)?;
        match values.len() {
            1 => Ok(values.pop().unwrap_or_default()),
            0 => Err("it yielded no value; it must yield one".to_string()),
            n => Err(format!(
                "it yielded {n} values; it must yield one (collect them with [...])"
            )),
        }
    }

    /// Whether the program's one value is true (jq's truth: anything but
    /// `false` and `null`).
    pub fn holds(&self, input: Val) -> Result<bool, String> {
        Ok(!matches!(
            self.run_one(input)?,
            Val::Null | Val::Bool(false)
        ))
    }
}

/// The dependency ids a program reads as `.deps.ID` (or `deps.ID` in a
/// template's shorthand), in order of appearance.
pub fn deps_read(code: &str) -> Vec<&str> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut found = Vec::new();
    for (at, _) in code.match_indices("deps.") {
        let before = code[..at].chars().next_back();
        // `.deps.x`, or `deps.x` at the start of a shorthand; not `$deps.x`
        // or `mydeps.x`.
        let starts = match before {
            None => true,
            Some('.') => !code[..at - 1].ends_with(|c: char| ident(c) || c == ']' || c == ')'),
            Some(c) => !ident(c) && c != '$',
        };
        let name = &code[at + "deps.".len()..];
        let end = name.find(|c: char| !ident(c)).unwrap_or(name.len());
        if starts && end > 0 {
            found.push(&name[..end]);
        }
    }
    found
}

/// The keys of a program that is only a path of identifiers
/// (`.deps.fetch.body`), else `None`.
fn plain_path(code: &str) -> Option<Arc<[Val]>> {
    let code = code.trim();
    let rest = code.strip_prefix('.')?;
    let keys: Vec<Val> = rest
        .split('.')
        .map(|key| {
            let identifier = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            identifier.then(|| Val::from(key.to_string()))
        })
        .collect::<Option<_>>()?;
    Some(keys.into())
}

/// What kind of value it is, with its article: "an object", "a number", ...
pub fn type_name(value: &Val) -> &'static str {
    match value {
        Val::Null => "null",
        Val::Bool(_) => "a boolean",
        Val::Num(_) => "a number",
        Val::BStr(_) | Val::TStr(_) => "a string",
        Val::Arr(_) => "a list",
        Val::Obj(_) => "an object",
    }
}

/// `object` with `key` set to `value` (an object's fields are shared, not
/// copied, until one changes: this copies only the top level).
pub fn with_field(object: &Val, key: &str, value: Val) -> Val {
    let mut map = match object {
        Val::Obj(map) => map.as_ref().clone(),
        _ => jaq_json::Map::default(),
    };
    map.insert(Val::from(key.to_string()), value);
    Val::obj(map)
}

/// Whether a program reads `.ROOT` (or `ROOT` at the start of a
/// template's shorthand), such as `.item` of a map element.
pub fn reads(code: &str, root: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let shorthand = code.trim_start();
    if let Some(after) = shorthand.strip_prefix(root)
        && !after.starts_with(ident)
        && !after.trim_start().starts_with('(')
    {
        return true;
    }
    code.match_indices(&format!(".{root}")).any(|(at, found)| {
        let before = code[..at].chars().next_back();
        let after = code[at + found.len()..].chars().next();
        !before.is_some_and(|c| ident(c) || c == ']' || c == ')' || c == '.' || c == '$')
            && !after.is_some_and(ident)
    })
}

/// The document a node's expressions run over: `{"input", "deps",
/// "errors" (when a dependency failed with `continue_on_error`), "run"}`,
/// built from values already read (a dependency's output is read once
/// however many nodes look at it).
pub fn context<'a>(
    input: Val,
    deps: impl IntoIterator<Item = (&'a str, Val)>,
    errors: impl IntoIterator<Item = (&'a str, &'a str)>,
    run: Val,
) -> Val {
    let object = |fields: &mut dyn Iterator<Item = (&'a str, Val)>| {
        Val::obj(
            fields
                .map(|(key, value)| (Val::from(key.to_string()), value))
                .collect(),
        )
    };
    let mut document = jaq_json::Map::default();
    document.insert(Val::from("input".to_string()), input);
    document.insert(Val::from("deps".to_string()), object(&mut deps.into_iter()));
    let mut errors = errors
        .into_iter()
        .map(|(id, message)| (id, Val::from(message.to_string())))
        .peekable();
    if errors.peek().is_some() {
        document.insert(Val::from("errors".to_string()), object(&mut errors));
    }
    document.insert(Val::from("run".to_string()), run);
    Val::obj(document)
}

/// JSON text as a value programs run over.
pub fn parse_json(text: &str) -> Result<Val, String> {
    jaq_json::read::parse_single(text.as_bytes()).map_err(|error| error.to_string())
}

/// The first lexing or parsing error, at its place.
fn load_error(code: &str, errors: jaq_core::load::Errors<&str, ()>) -> SyntaxError {
    use jaq_core::load::Error;
    let at = |found: &str| jaq_core::load::span(code, found).start;
    let first = errors.into_iter().next().map(|(_, error)| error);
    match first {
        Some(Error::Lex(errors)) => match errors.first() {
            Some((expected, found)) => SyntaxError {
                message: format!("expected {}", expected.as_str()),
                offset: at(found),
            },
            None => unknown(),
        },
        Some(Error::Parse(errors)) => match errors.first() {
            Some((expected, found)) => SyntaxError {
                message: match found.is_empty() {
                    true => format!("expected {} at the end", expected.as_str()),
                    false => format!("expected {}, found `{found}`", expected.as_str()),
                },
                offset: at(found),
            },
            None => unknown(),
        },
        Some(Error::Io(errors)) => SyntaxError {
            message: errors
                .first()
                .map_or("cannot load a module".to_string(), |(path, why)| {
                    format!("cannot load module {path}: {why}")
                }),
            offset: 0,
        },
        None => unknown(),
    }
}

/// The first undefined name, at its place.
fn compile_error(code: &str, errors: jaq_core::compile::Errors<&str, ()>) -> SyntaxError {
    let first = errors.into_iter().flat_map(|(_, errors)| errors).next();
    match first {
        Some((name, undefined)) => {
            let what = match undefined {
                jaq_core::compile::Undefined::Var => "variable",
                jaq_core::compile::Undefined::Mod => "module",
                jaq_core::compile::Undefined::Label => "label",
                _ => "filter",
            };
            let denied = DENIED
                .iter()
                .any(|denied| name.trim_start_matches('$') == *denied)
                || name == "$ENV";
            SyntaxError {
                message: match denied {
                    true => format!("`{name}` is not available in workflow expressions"),
                    false => format!("undefined {what} `{name}`"),
                },
                offset: jaq_core::load::span(code, name).start,
            }
        }
        None => unknown(),
    }
}

fn unknown() -> SyntaxError {
    SyntaxError {
        message: "cannot parse the program".to_string(),
        offset: 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_paths_give_what_jq_gives() {
        use super::{Expr, parse_json};
        let input = parse_json(r#"{"a":{"b":[1,2],"n":null,"s":"x"}}"#).unwrap();
        for (code, plain) in [
            (".a.b", true),
            (".a.missing.deeper", true),
            (".a.n.deeper", true),
            (".a", true),
            (".a.s.x", true),
            (".a.b[0]", false),
            (".a | .b", false),
            ("..", false),
            (".a.\"b\"", false),
        ] {
            let expr = Expr::compile(code).unwrap();
            assert_eq!(expr.path.is_some(), plain, "{code}");
            let mut jq = expr.clone();
            jq.path = None;
            assert_eq!(
                expr.run(input.clone()),
                jq.run(input.clone()),
                "{code}: the lookup and jq differ"
            );
        }
    }

    #[test]
    fn reads_finds_a_root_at_the_start_of_a_path_only() {
        use super::reads;
        assert!(reads(".item.name", "item"));
        assert!(reads("{a: .item}", "item"));
        assert!(reads("item.name", "item"), "a template's shorthand");
        assert!(reads("[.index, 1]", "index"));
        assert!(!reads(".deps.x.item", "item"), "a field of something else");
        assert!(!reads(".items", "item"));
        assert!(!reads("index(\"a\")", "index"), "jq's function");
        assert!(!reads("$item", "item"));
    }

    use super::*;

    fn run(code: &str, input: &str) -> Result<String, String> {
        let expr = Expr::compile(code).map_err(|e| e.message)?;
        expr.run_one(parse_json(input).unwrap())
            .map(|v| v.to_string())
    }

    #[test]
    fn programs_run_over_json() {
        assert_eq!(
            run(".deps.a.x + 1", r#"{"deps":{"a":{"x":41}}}"#).unwrap(),
            "42"
        );
        assert_eq!(
            run(
                "{ids: [.deps.list[] | .id]}",
                r#"{"deps":{"list":[{"id":1},{"id":2}]}}"#
            )
            .unwrap(),
            r#"{"ids":[1,2]}"#
        );
        assert_eq!(
            run("[.[] | select(. > 1)] | length", "[1,2,3]").unwrap(),
            "2"
        );
        let expr = Expr::compile(".ok == true").unwrap();
        assert!(expr.holds(parse_json(r#"{"ok":true}"#).unwrap()).unwrap());
        assert!(!expr.holds(parse_json(r#"{"ok":1}"#).unwrap()).unwrap());
    }

    #[test]
    fn syntax_errors_say_where() {
        let error = Expr::compile(".a | | .b").unwrap_err();
        assert_eq!(error.offset, 5, "{error:?}");
        let error = Expr::compile(".a | nosuch(1)").unwrap_err();
        assert_eq!(error.message, "undefined filter `nosuch`");
        assert_eq!(error.offset, 5);
    }

    #[test]
    fn the_dependencies_a_program_reads_are_found() {
        assert_eq!(deps_read(".deps.a.x + .deps.b-c[0]"), ["a", "b-c"]);
        assert_eq!(deps_read("deps.fetch.body"), ["fetch"]);
        assert_eq!(deps_read("[.deps.list[] | .id]"), ["list"]);
        assert!(deps_read("$deps.a, .x.deps.b, .input.deps").is_empty());
    }

    #[test]
    fn the_host_is_out_of_reach() {
        for code in [
            "env",
            "$ENV",
            "input",
            "halt",
            "halt_error",
            "debug",
            "stderr",
        ] {
            let error = Expr::compile(code).unwrap_err();
            assert!(error.message.contains("not available"), "{code}: {error:?}");
        }
    }

    #[test]
    fn runtime_errors_and_counts_are_errors() {
        assert!(run("error(\"boom\")", "null").unwrap_err().contains("boom"));
        assert!(run(".[]", "[1,2]").unwrap_err().contains("2 values"));
        assert!(run("empty", "null").unwrap_err().contains("no value"));
        assert!(run(".a + 1", r#"{"a":"x"}"#).is_err());
    }
}
