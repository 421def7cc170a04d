//! Options given on the command line, applied over the workflow file's and
//! stored with a run, so that a resumed run keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::table::{OptionError, OptionSpec, OptionValue, Scope};
use super::{NodeOptions, WorkflowOptions};

/// Options over the workflow file's, by key, as the text the command line
/// takes (`"250ms"`, `"auto"`, `"3"`). A node option applies to every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overrides(BTreeMap<String, String>);

impl Overrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets option `key` to `text`, once it is checked.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), OptionError> {
        let option = option_by_key(key).ok_or_else(|| OptionError {
            message: format!("there is no option `{key}`"),
            span: None,
        })?;
        option.check(OptionValue::Text(text))?;
        self.0.insert(key.to_string(), text.to_string());
        Ok(())
    }

    /// The value given for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// True when nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These overrides with `newer`'s on top.
    pub fn merged_with(&self, newer: &Overrides) -> Overrides {
        let mut merged = self.0.clone();
        merged.extend(newer.0.clone());
        Overrides(merged)
    }

    /// Applies the workflow options among the overrides.
    pub fn apply_workflow(&self, options: &mut WorkflowOptions) {
        for (option, text) in self.options(Scope::Workflow) {
            // Checked when set; stored ones that no longer parse are left out.
            let _ = option.apply_workflow(options, OptionValue::Text(text));
        }
    }

    /// Applies the node options among the overrides.
    pub fn apply_node(&self, options: &mut NodeOptions) {
        for (option, text) in self.options(Scope::Node) {
            let _ = option.apply_node(options, OptionValue::Text(text));
        }
    }

    fn options(&self, scope: Scope) -> impl Iterator<Item = (&'static OptionSpec, &str)> {
        self.0.iter().filter_map(move |(key, text)| {
            let option = OptionSpec::find(scope, key)?;
            Some((option, text.as_str()))
        })
    }
}

/// The option called `key`, whatever its scope.
fn option_by_key(key: &str) -> Option<&'static OptionSpec> {
    OptionSpec::find(Scope::Workflow, key).or_else(|| OptionSpec::find(Scope::Node, key))
}

impl<'de> Deserialize<'de> for Overrides {
    /// Reads the map as stored; runs recorded by older versions stored
    /// every option, unset ones as `null`, and some as numbers.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
        Ok(Overrides(
            stored
                .into_iter()
                .filter_map(|(key, value)| match value {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(text) => Some((key, text)),
                    other => Some((key, other.to_string())),
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::Concurrency;

    #[test]
    fn overrides_are_checked_applied_and_stored_as_text() {
        let mut overrides = Overrides::new();
        overrides.set("max_concurrency", "3").unwrap();
        overrides.set("timeout", "1s 500ms").unwrap();
        overrides.set("fuel", "unlimited").unwrap();
        assert!(overrides.set("timeout", "soon").is_err());
        assert!(overrides.set("colour", "red").is_err());

        let mut workflow = WorkflowOptions::default();
        let mut node = NodeOptions::default();
        overrides.apply_workflow(&mut workflow);
        overrides.apply_node(&mut node);
        assert_eq!(workflow.max_concurrency, Concurrency::Fixed(3));
        assert_eq!(node.limits.timeout, Duration::from_millis(1500));
        assert_eq!(node.limits.fuel, None);

        let json = serde_json::to_value(&overrides).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"fuel": "unlimited", "max_concurrency": "3", "timeout": "1s 500ms"})
        );
        let back: Overrides = serde_json::from_value(json).unwrap();
        assert_eq!(back, overrides);
    }

    #[test]
    fn overrides_stored_by_older_versions_still_read() {
        let old = serde_json::json!({
            "max_concurrency": "3", "schedule": null, "retries": 7, "memory": 1048576,
            "fuel": "unlimited", "timeout": null
        });
        let overrides: Overrides = serde_json::from_value(old).unwrap();
        let mut node = NodeOptions::default();
        overrides.apply_node(&mut node);
        assert_eq!(node.retry.retries, 7);
        assert_eq!(node.limits.memory, 1 << 20);
        assert_eq!(overrides.get("schedule"), None);
    }

    #[test]
    fn newer_overrides_win() {
        let mut old = Overrides::new();
        old.set("retries", "1").unwrap();
        old.set("timeout", "5s").unwrap();
        let mut new = Overrides::new();
        new.set("retries", "4").unwrap();
        let merged = old.merged_with(&new);
        assert_eq!(merged.get("retries"), Some("4"));
        assert_eq!(merged.get("timeout"), Some("5s"));
    }
}
