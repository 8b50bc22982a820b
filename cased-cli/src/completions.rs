//! `cased completions <shell>` and `cased man`: the shell completion scripts and the man pages,
//! generated from the command-line definition itself, so they never drift from it.
//!
//! ```sh
//! cased completions bash > /etc/bash_completion.d/cased
//! cased completions zsh > "${fpath[1]}/_cased"
//! cased man > /usr/local/share/man/man1/cased.1
//! cased man --out-dir /usr/local/share/man/man1   # cased.1, cased-monitor.1, ...
//! ```

use std::path::PathBuf;

use clap::CommandFactory;

use crate::{Cli, Failure};

/// `cased completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// `cased man`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write `cased.1` and one page per subcommand (`cased-monitor.1`, ...) into this directory
    /// instead of printing `cased(1)`.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script of `args.shell`.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "cased", &mut std::io::stdout());
    Ok(())
}

/// Prints `cased(1)`, or writes every page into `--out-dir`.
pub(crate) fn man(args: &ManArgs) -> Result<(), Failure> {
    let cmd = Cli::command();
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Other(format!("cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, dir)
                .map_err(|e| Failure::Other(format!("cannot write into {}: {e}", dir.display())))
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(Failure::Io),
    }
}
