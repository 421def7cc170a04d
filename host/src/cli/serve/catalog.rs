//! The workflows a server offers: the `.toml` files of its `--workflows`
//! directory, each read again when asked for, so that an edited file is
//! seen at once.

use std::path::{Path, PathBuf};

use flow_host::{SpecError, WorkflowSpec};

/// The directory of workflow files.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: Option<PathBuf>,
}

/// A workflow file of the directory.
#[derive(Debug)]
pub struct Entry {
    /// The file's name without `.toml`: the workflow's name in the API.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The workflow, or why it is invalid.
    pub spec: Result<WorkflowSpec, SpecError>,
}

impl Catalog {
    /// The workflows of `dir`; none without one.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The directory, if there is one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The names of the workflow files, sorted.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml")
                && path.is_file()
                && let Some(name) = path.file_stem().and_then(|s| s.to_str())
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The workflow file called `name`, read and validated now; `None` if
    /// the directory has no such file. Only names the directory lists are
    /// looked up, so no name reaches outside it.
    pub fn get(&self, name: &str) -> std::io::Result<Option<Entry>> {
        let (Some(dir), true) = (&self.dir, self.names()?.iter().any(|n| n == name)) else {
            return Ok(None);
        };
        let path = dir.join(format!("{name}.toml"));
        let spec = WorkflowSpec::load(&path);
        Ok(Some(Entry {
            name: name.to_string(),
            path,
            spec,
        }))
    }

    /// The valid workflow files that have `cron`, by name.
    pub fn scheduled(&self) -> Vec<(String, WorkflowSpec)> {
        let mut found = Vec::new();
        for name in self.names().unwrap_or_default() {
            if let Ok(Some(entry)) = self.get(&name)
                && let Ok(spec) = entry.spec
                && spec.cron.is_some()
            {
                found.push((name, spec));
            }
        }
        found
    }
}
