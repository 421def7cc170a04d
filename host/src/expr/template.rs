//! Templates in a node's `input`: strings holding `${{ program }}`.
//!
//! A string that is one template, `"${{ deps.fetch.body }}"`, becomes the
//! program's value, whatever its type; templates inside text,
//! `"Dear ${{ deps.user.name }}!"`, are replaced by their values as text
//! (a string as it is, anything else as JSON). `deps.x`, `input.x` and
//! `run.x` are short for `.deps.x`, `.input.x`, `.run.x`.

use jaq_json::Val;
use serde_json::Value as Json;

use super::{Expr, SyntaxError};

const OPEN: &str = "${{";
const CLOSE: &str = "}}";

/// A node input with templates, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Part);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(Json),
    Whole(Program),
    Text(Vec<Piece>),
    Array(Vec<Part>),
    Object(Vec<(String, Part)>),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Expr(Program),
}

/// A program and its text as written (`deps.x`, run as `.deps.x`).
#[derive(Debug, Clone, PartialEq)]
struct Program {
    written: String,
    expr: Expr,
}

/// A template whose program does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The string holding the template, as written.
    pub text: String,
    /// The program, as written between `${{` and `}}`.
    pub code: String,
    /// Where in `text` the program's error is (a byte offset).
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl Template {
    /// The templates of `input`; `None` when it has none. Every program
    /// that does not compile is an error.
    pub fn parse(input: &Json) -> Result<Option<Self>, Vec<TemplateError>> {
        if !has_templates(input) {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let part = part(input, &mut errors);
        match errors.is_empty() {
            true => Ok(Some(Self(part))),
            false => Err(errors),
        }
    }

    /// The programs of the templates, as written (`deps.x.y`).
    pub fn programs(&self) -> Vec<&str> {
        fn collect<'a>(part: &'a Part, out: &mut Vec<&'a str>) {
            match part {
                Part::Literal(_) => {}
                Part::Whole(program) => out.push(&program.written),
                Part::Text(pieces) => out.extend(pieces.iter().filter_map(|piece| match piece {
                    Piece::Expr(program) => Some(program.written.as_str()),
                    Piece::Text(_) => None,
                })),
                Part::Array(items) => items.iter().for_each(|item| collect(item, out)),
                Part::Object(fields) => fields.iter().for_each(|(_, value)| collect(value, out)),
            }
        }
        let mut out = Vec::new();
        collect(&self.0, &mut out);
        out
    }

    /// The input with every template replaced by its value over `context`.
    pub fn render(&self, context: &Val) -> Result<Json, String> {
        render(&self.0, context)
    }
}

fn has_templates(value: &Json) -> bool {
    match value {
        Json::String(text) => text.contains(OPEN),
        Json::Array(items) => items.iter().any(has_templates),
        Json::Object(fields) => fields.values().any(has_templates),
        _ => false,
    }
}

fn part(value: &Json, errors: &mut Vec<TemplateError>) -> Part {
    match value {
        Json::String(text) if text.contains(OPEN) => match pieces(text) {
            Ok(pieces) => match pieces.as_slice() {
                [Piece::Expr(expr)] => Part::Whole(expr.clone()),
                _ => Part::Text(pieces),
            },
            Err(error) => {
                errors.push(error);
                Part::Literal(Json::Null)
            }
        },
        Json::Array(items) => Part::Array(items.iter().map(|item| part(item, errors)).collect()),
        Json::Object(fields) => Part::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), part(value, errors)))
                .collect(),
        ),
        other => Part::Literal(other.clone()),
    }
}

/// The text and programs of a string.
fn pieces(text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find(OPEN).map(|at| rest + at) {
        if open > rest {
            pieces.push(Piece::Text(text[rest..open].to_string()));
        }
        let start = open + OPEN.len();
        let Some(end) = text[start..].find(CLOSE).map(|at| start + at) else {
            return Err(TemplateError {
                text: text.to_string(),
                code: text[start..].trim().to_string(),
                offset: open,
                message: format!("`{OPEN}` is not closed by `{CLOSE}`"),
            });
        };
        let code = &text[start..end];
        let program = shorthand(code);
        let expr = Expr::compile(&program).map_err(|SyntaxError { message, offset }| {
            // The offset in the written program, not in the expanded one.
            let lead = code.len() - code.trim_start().len();
            let offset = offset.saturating_sub(program.len() - code.trim().len()) + lead;
            TemplateError {
                text: text.to_string(),
                code: code.trim().to_string(),
                offset: start + offset.min(code.len()),
                message,
            }
        })?;
        pieces.push(Piece::Expr(Program {
            written: code.trim().to_string(),
            expr,
        }));
        rest = end + CLOSE.len();
    }
    if rest < text.len() {
        pieces.push(Piece::Text(text[rest..].to_string()));
    }
    Ok(pieces)
}

/// `deps.x` for `.deps.x` (likewise `input`, `run`, and a map element's
/// `item` and `index`); anything else as written.
fn shorthand(code: &str) -> String {
    let code = code.trim();
    for root in ["deps", "input", "run", "item", "index"] {
        if let Some(after) = code.strip_prefix(root)
            && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_')
            // `index(...)` is jq's function, not the element's index.
            && !after.trim_start().starts_with('(')
        {
            return format!(".{code}");
        }
    }
    code.to_string()
}

fn render(part: &Part, context: &Val) -> Result<Json, String> {
    Ok(match part {
        Part::Literal(value) => value.clone(),
        Part::Whole(expr) => to_json(&evaluate(expr, context)?)?,
        Part::Text(pieces) => {
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(literal) => text.push_str(literal),
                    Piece::Expr(expr) => match to_json(&evaluate(expr, context)?)? {
                        Json::String(value) => text.push_str(&value),
                        other => text.push_str(&other.to_string()),
                    },
                }
            }
            Json::String(text)
        }
        Part::Array(items) => Json::Array(
            items
                .iter()
                .map(|item| render(item, context))
                .collect::<Result<_, _>>()?,
        ),
        Part::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(name, value)| Ok((name.clone(), render(value, context)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn evaluate(program: &Program, context: &Val) -> Result<Val, String> {
    program
        .expr
        .run_one(context.clone())
        .map_err(|error| format!("`${{{{ {} }}}}`: {error}", program.written))
}

/// A value as JSON, converted directly (no text in between). NaN and the
/// infinities, which JSON cannot carry, become `null`, as jq prints them.
pub fn to_json(value: &Val) -> Result<Json, String> {
    use jaq_json::Num;
    Ok(match value {
        Val::Null => Json::Null,
        Val::Bool(b) => Json::Bool(*b),
        Val::Num(Num::Int(i)) => Json::from(*i as i64),
        Val::Num(Num::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        // Big integers and decimals as read: their text is a JSON number.
        Val::Num(other) => serde_json::from_str(&other.to_string())
            .map_err(|error| format!("its value is not JSON ({error})"))?,
        Val::TStr(bytes) | Val::BStr(bytes) => {
            Json::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Val::Obj(fields) => Json::Object(
            fields
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Val::TStr(bytes) | Val::BStr(bytes) => {
                            String::from_utf8_lossy(bytes).into_owned()
                        }
                        other => other.to_string(),
                    };
                    Ok((key, to_json(value)?))
                })
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::expr::parse_json;

    fn render_with(input: Json, context: &str) -> Result<Json, String> {
        let template = Template::parse(&input).unwrap().expect("a template");
        template.render(&parse_json(context).unwrap())
    }

    #[test]
    fn whole_strings_take_any_value_and_text_takes_text() {
        let context =
            r#"{"deps":{"fetch":{"body":{"user":{"name":"Ada","id":7}}}},"run":{"id":"R1"}}"#;
        let out = render_with(
            json!({
                "user": "${{ deps.fetch.body.user }}",
                "greeting": "Dear ${{deps.fetch.body.user.name}} (#${{ .deps.fetch.body.user.id }}) of ${{ run.id }}",
                "list": ["${{ [1, 2] | length }}", 3],
                "plain": "no templates here"
            }),
            context,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "user": {"name": "Ada", "id": 7},
                "greeting": "Dear Ada (#7) of R1",
                "list": [2, 3],
                "plain": "no templates here"
            })
        );
    }

    #[test]
    fn values_become_the_same_json_as_jq_prints() {
        for text in [
            r#"{"a":[1,-2,1.5,1e300,"x\u00e9\n",true,null,{"b":{}}],"c":123456789012345678901234567890}"#,
            "[]",
            "0.1",
        ] {
            let value = parse_json(text).unwrap();
            let direct = to_json(&value).unwrap();
            let printed: Json = serde_json::from_str(&value.to_string()).unwrap();
            assert_eq!(direct, printed, "{text}");
        }
        let nan = Expr::compile("nan").unwrap().run_one(Val::Null).unwrap();
        assert_eq!(to_json(&nan).unwrap(), Json::Null);
    }

    #[test]
    fn inputs_without_templates_are_left_alone() {
        assert_eq!(Template::parse(&json!({"a": "$ {{ x }}"})).unwrap(), None);
    }

    #[test]
    fn errors_point_into_the_string() {
        let errors =
            Template::parse(&json!({"a": "x ${{ deps.a | | 1 }}", "b": "${{ deps.a"})).unwrap_err();
        assert_eq!(errors[0].code, "deps.a | | 1");
        assert_eq!(&errors[0].text[errors[0].offset..], "| 1 }}");
        assert!(errors[1].message.contains("not closed"));
        assert_eq!(errors[1].code, "deps.a");
        let failed = render_with(json!("${{ deps.a.b }}"), r#"{"deps":{"a":"text"}}"#);
        assert!(failed.unwrap_err().starts_with("`${{ deps.a.b }}`: "));
    }
}
