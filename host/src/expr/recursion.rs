//! Definitions that call themselves. Expressions run in the host, where a
//! recursion without end would overflow the stack and stop the process, so
//! a program whose `def` calls itself (directly, or through a definition
//! nested in it) is refused when it is compiled.

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Pattern, Term};
use jaq_core::path::Part;

/// The name of the first definition in `code` that calls itself, if any.
pub(super) fn recursive_def(code: &str) -> Option<&str> {
    let term = jaq_core::load::parse(code, |parser| parser.term())?;
    first_recursive(&term)
}

fn first_recursive<'a>(term: &Term<&'a str>) -> Option<&'a str> {
    if let Term::Def(defs, _) = term {
        for def in defs {
            if calls(&def.body, def.name) {
                return Some(def.name);
            }
        }
    }
    children(term).into_iter().find_map(first_recursive)
}

/// Whether `term` calls `name` anywhere within it.
fn calls(term: &Term<&str>, name: &str) -> bool {
    matches!(term, Term::Call(called, _) if *called == name)
        || children(term).into_iter().any(|child| calls(child, name))
}

/// The terms directly within `term`, definitions' bodies included.
fn children<'t, 's>(term: &'t Term<&'s str>) -> Vec<&'t Term<&'s str>> {
    let mut found = Vec::new();
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Str(_, parts) => found.extend(parts.iter().filter_map(|part| match part {
            StrPart::Term(term) => Some(term),
            _ => None,
        })),
        Term::Arr(inner) => found.extend(inner.as_deref()),
        Term::Obj(entries) => {
            for (key, value) in entries {
                found.push(key);
                found.extend(value);
            }
        }
        Term::Neg(inner) | Term::Label(_, inner) => found.push(inner),
        Term::BinOp(left, op, right) => {
            found.push(left);
            found.push(right);
            if let BinaryOp::Pipe(Some(pattern)) = op {
                pattern_terms(pattern, &mut found);
            }
        }
        Term::Fold(_, source, pattern, args) => {
            found.push(source);
            pattern_terms(pattern, &mut found);
            found.extend(args);
        }
        Term::TryCatch(body, catch) => {
            found.push(body);
            found.extend(catch.as_deref());
        }
        Term::IfThenElse(branches, otherwise) => {
            for (condition, then) in branches {
                found.push(condition);
                found.push(then);
            }
            found.extend(otherwise.as_deref());
        }
        Term::Def(defs, rest) => {
            found.extend(defs.iter().map(|def| &def.body));
            found.push(rest);
        }
        Term::Call(_, args) => found.extend(args),
        Term::Path(head, path) => {
            found.push(head);
            for (part, _) in &path.0 {
                match part {
                    Part::Index(index) => found.push(index),
                    Part::Range(from, to) => {
                        found.extend(from);
                        found.extend(to);
                    }
                }
            }
        }
    }
    found
}

fn pattern_terms<'t, 's>(pattern: &'t Pattern<&'s str>, found: &mut Vec<&'t Term<&'s str>>) {
    match pattern {
        Pattern::Var(_) => {}
        Pattern::Arr(items) => items.iter().for_each(|item| pattern_terms(item, found)),
        Pattern::Obj(entries) => {
            for (key, value) in entries {
                found.push(key);
                pattern_terms(value, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::recursive_def;

    #[test]
    fn a_definition_that_calls_itself_is_found() {
        assert_eq!(recursive_def("def f: 1 + f; f"), Some("f"));
        assert_eq!(
            recursive_def("def f(x): if x then f(x) else 1 end; f(.)"),
            Some("f")
        );
        assert_eq!(
            recursive_def("def f: def g: f; g; f"),
            Some("f"),
            "through a definition nested in it"
        );
        assert_eq!(recursive_def("[.[] | def f: . + 1; f]"), None);
        assert_eq!(recursive_def("def f: 1; def g: f + f; g"), None);
        assert_eq!(recursive_def(".deps.list | map(.id)"), None);
    }

    /// jq's own loops, defined recursively in its standard library, run
    /// deep without overflowing a thread's stack (2 MiB for tests, as for
    /// the engine's workers).
    #[test]
    fn jqs_loops_run_deep_on_a_small_stack() {
        use super::super::{Expr, parse_json};
        for (code, expected) in [
            ("0 | until(. > 100000; . + 1)", "100001"),
            (
                "[recurse(if . < 100000 then . + 1 else empty end)] | length",
                "100001",
            ),
            ("[limit(100000; repeat(1))] | length", "100000"),
            ("reduce range(100000) as $i (0; . + 1)", "100000"),
        ] {
            let value = Expr::compile(code)
                .unwrap()
                .run_one(parse_json("0").unwrap())
                .unwrap();
            assert_eq!(value.to_string(), expected, "{code}");
        }
    }
}
