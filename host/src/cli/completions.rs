//! `flow completions SHELL`: a completion script for the shell.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Exit;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell, e.g. `bash`: `flow completions bash > ~/.local/share/bash-completion/completions/flow`
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the script for `args.shell` on stdout.
pub fn print<C: CommandFactory>(args: &CompletionsArgs) -> Exit {
    let mut command = C::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "flow", &mut script);
    let mut out = super::out::stdout();
    let written =
        std::io::Write::write_all(&mut out, &script).and_then(|()| std::io::Write::flush(&mut out));
    match written {
        Ok(()) => Exit::Success,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(error) => {
            super::out::eprint(format_args!("error: cannot write the script: {error}"));
            Exit::Environment
        }
    }
}
