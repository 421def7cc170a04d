//! `math`: count, sum, mean, minimum and maximum of a list of numbers.
//!
//! Input: `values` (a list of numbers) or `from` (a reference
//! `"node/json/pointer"` to such a list in a dependency's output), and
//! optionally `ops`, the statistics to return (default: all of
//! `count`, `sum`, `mean`, `min`, `max`). The output is an object with one
//! field per statistic. The sum of integers is an integer; `mean`, `min` and
//! `max` of an empty list are `null`.
//!
//! ```toml
//! [nodes.total]
//! action = "math"
//! depends_on = ["order"]
//! input = { from = "order/amounts", ops = ["sum", "mean"] }
//! ```

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{Map, Number, Value};
use flow_plugin_sdk::{ActionError, Context, Request, export_action};

/// A statistic `math` can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", rename_all = "lowercase")]
pub enum Op {
    /// How many numbers.
    Count,
    /// Their sum.
    Sum,
    /// Their arithmetic mean.
    Mean,
    /// The smallest.
    Min,
    /// The largest.
    Max,
}

const ALL: [Op; 5] = [Op::Count, Op::Sum, Op::Mean, Op::Min, Op::Max];

/// The node's `input` table.
#[derive(Debug, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Params {
    values: Option<Value>,
    from: Option<String>,
    ops: Option<Vec<Op>>,
}

/// Computes the requested statistics.
pub fn statistics(_: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let params = request.input;
    let list = match (&params.values, &params.from) {
        (Some(values), None) => values,
        (None, Some(reference)) => request.deps.resolve(reference)?,
        _ => {
            return Err(ActionError::fatal(
                "give the numbers with exactly one of `values` and `from`",
            ));
        }
    };
    let numbers = numbers(list)?;
    let ops = params.ops.as_deref().unwrap_or(&ALL);
    let mut output = Map::new();
    for op in ops {
        let (name, value) = match op {
            Op::Count => ("count", Value::from(numbers.len())),
            Op::Sum => ("sum", sum(&numbers)),
            Op::Mean => ("mean", float(mean(&numbers))),
            Op::Min => ("min", extreme(&numbers, f64::min)),
            Op::Max => ("max", extreme(&numbers, f64::max)),
        };
        output.insert(name.to_string(), value);
    }
    Ok(Value::Object(output))
}

fn numbers(list: &Value) -> Result<Vec<Number>, ActionError> {
    let Value::Array(items) = list else {
        return Err(ActionError::fatal("the numbers must be a list"));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Number(number) => Ok(number.clone()),
            other => Err(ActionError::fatal(format!(
                "item {index} of the list is not a number: {other}"
            ))),
        })
        .collect()
}

fn sum(numbers: &[Number]) -> Value {
    let integers: Option<i64> = numbers
        .iter()
        .try_fold(0i64, |total, n| total.checked_add(n.as_i64()?));
    match integers {
        Some(total) => Value::from(total),
        None => float(Some(numbers.iter().filter_map(Number::as_f64).sum())),
    }
}

fn mean(numbers: &[Number]) -> Option<f64> {
    if numbers.is_empty() {
        return None;
    }
    let total: f64 = numbers.iter().filter_map(Number::as_f64).sum();
    Some(total / numbers.len() as f64)
}

fn extreme(numbers: &[Number], pick: fn(f64, f64) -> f64) -> Value {
    let best = numbers.iter().filter_map(Number::as_f64).reduce(pick);
    // Return the original number so integers stay integers.
    best.and_then(|best| numbers.iter().find(|n| n.as_f64() == Some(best)))
        .map_or(Value::Null, |n| Value::Number(n.clone()))
}

fn float(value: Option<f64>) -> Value {
    value
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

export_action! {
    name: "math",
    description: "Sum, mean, minimum and maximum of a list of numbers",
    run: statistics,
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::json;

    fn run(request: Value) -> Result<Value, ActionError> {
        let request = Request::from_json(&request.to_string())?;
        statistics(&Context::for_tests("math"), request)
    }

    #[test]
    fn all_statistics_by_default() {
        let output = run(json!({"input": {"values": [12.5, 3, 7.25]}})).unwrap();
        assert_eq!(
            output,
            json!({"count": 3, "sum": 22.75, "mean": 22.75 / 3.0, "min": 3, "max": 12.5})
        );
    }

    #[test]
    fn integer_sum_stays_integer() {
        let output = run(json!({"input": {"values": [1, 2, 3], "ops": ["sum"]}})).unwrap();
        assert_eq!(output, json!({"sum": 6}));
        assert!(output["sum"].is_i64());
    }

    #[test]
    fn from_a_dependency() {
        let output = run(json!({
            "input": {"from": "order/amounts", "ops": ["max", "count"]},
            "deps": {"order": {"amounts": [4, -1]}}
        }))
        .unwrap();
        assert_eq!(output, json!({"max": 4, "count": 2}));
    }

    #[test]
    fn empty_list() {
        let output = run(json!({"input": {"values": []}})).unwrap();
        assert_eq!(
            output,
            json!({"count": 0, "sum": 0, "mean": null, "min": null, "max": null})
        );
    }

    #[test]
    fn bad_input_is_fatal() {
        let not_number = run(json!({"input": {"values": [1, "2"]}})).unwrap_err();
        assert_eq!(
            not_number.message(),
            "item 1 of the list is not a number: \"2\""
        );
        assert!(!not_number.is_retryable());
        let both = run(json!({"input": {"values": [], "from": "a"}})).unwrap_err();
        assert_eq!(
            both.message(),
            "give the numbers with exactly one of `values` and `from`"
        );
        let op = run(json!({"input": {"values": [], "ops": ["median"]}})).unwrap_err();
        assert!(op.message().contains("unknown variant `median`"), "{op}");
    }
}
