//! Command-line flags that override a workflow's options: one per option
//! of the table in `flow_host::options` that has a flag, built from it.

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use flow_host::options::{OPTIONS, OptionSpec, OptionValue, Overrides, Scope};

/// The options of `flow run` and `flow resume` that override the workflow
/// file's.
#[derive(Debug, Clone, Default)]
pub struct OptionArgs {
    overrides: Overrides,
}

impl OptionArgs {
    /// The overrides these flags make.
    pub fn overrides(&self) -> Overrides {
        self.overrides.clone()
    }

    /// Whether any option flag was given.
    pub fn given(&self) -> bool {
        !self.overrides.is_empty()
    }
}

fn flagged() -> impl Iterator<Item = (&'static OptionSpec, String, &'static str)> {
    OPTIONS
        .iter()
        .filter_map(|option| Some((option, option.flag_name()?, option.flag?)))
}

impl Args for OptionArgs {
    fn augment_args(command: Command) -> Command {
        let mut command =
            command.next_help_heading("Options over the workflow file's (for every node)");
        for (option, flag, value_name) in flagged() {
            let help = match option.scope {
                Scope::Workflow => format!(
                    "{} [file: {} in [workflow]]",
                    capital(option.doc),
                    option.key
                ),
                Scope::Node => format!("{} [file: {}]", capital(option.doc), option.key),
            };
            let arg = Arg::new(option.key)
                .long(flag)
                .value_name(value_name)
                .help(help)
                .value_parser(move |text: &str| {
                    option
                        .check(OptionValue::Text(text))
                        .map(|()| text.to_string())
                        .map_err(|error| error.message)
                });
            command = command.arg(arg);
        }
        command
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for OptionArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (option, _, _) in flagged() {
            if let Some(text) = matches.get_one::<String>(option.key) {
                self.overrides.set(option.key, text).map_err(|error| {
                    clap::Error::raw(clap::error::ErrorKind::ValueValidation, error)
                })?;
            }
        }
        Ok(())
    }
}

fn capital(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
