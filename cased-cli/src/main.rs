//! `cased`: deployment events and post-deployment monitoring from CI/CD.
//!
//! This file only parses the command line, switches logging on, runs one subcommand and turns
//! its outcome into an exit code. Each subcommand lives in its own module (`notify.rs`, ...)
//! with its flags and its `run` function.
//!
//! Exit codes, the same for every subcommand:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (for `notify`: the event was delivered) |
//! | 1 | the API refused the request or could not be reached |
//! | 2 | reserved for a monitoring verdict that is not healthy |
//! | 3 | usage or validation error (bad flags, an invalid event or configuration) |

mod notify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: the command did what it was asked.
const EXIT_OK: u8 = 0;
/// Exit code: the API refused the request or could not be reached.
const EXIT_API: u8 = 1;
/// Exit code: usage or validation error.
const EXIT_USAGE: u8 = 3;

/// Embeddable post-deployment monitoring: tell cased about deployments from CI/CD.
#[derive(Debug, Parser)]
#[command(
    name = "cased",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Log filter, `RUST_LOG` style ("info", "cased_core=debug"); logs go to stderr.
    /// Without it, `RUST_LOG` is used when set, and nothing is logged otherwise.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Post a deployment event to the deployments API (built from flags and/or the CI
    /// environment) and print the server's answer as JSON.
    Notify(notify::NotifyArgs),
}

/// Why a subcommand failed; decides the exit code and what is printed on stderr.
#[derive(Debug)]
enum Failure {
    /// From cased-core: validation errors exit 3, everything else (the API) exits 1.
    Core(cased_core::Error),
    /// Writing the answer to stdout failed.
    Io(std::io::Error),
}

impl From<cased_core::Error> for Failure {
    fn from(e: cased_core::Error) -> Self {
        Self::Core(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Core(e) if e.kind() == cased_core::ErrorKind::Validation => EXIT_USAGE,
            Self::Core(_) | Self::Io(_) => EXIT_API,
        }
    }

    /// Prints the failure on stderr; a validation error prints every problem on its own line.
    fn report(&self) {
        match self {
            Self::Core(cased_core::Error::Validation(v)) => {
                let n = v.errors.len();
                eprintln!(
                    "error: invalid {} ({n} problem{}):",
                    v.subject,
                    if n == 1 { "" } else { "s" }
                );
                for problem in &v.errors {
                    match notify::flag_for(&problem.field) {
                        Some(flag) => {
                            eprintln!("  - {} ({flag}): {}", problem.field, problem.message)
                        }
                        None => eprintln!("  - {}: {}", problem.field, problem.message),
                    }
                }
            }
            Self::Core(e) => eprintln!("error: {e}"),
            Self::Io(e) => eprintln!("error: cannot write the answer: {e}"),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` come here too, and are not errors.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(failure) => {
            failure.report();
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if cli.log.is_some() || std::env::var_os("RUST_LOG").is_some() {
        cased_core::logging::init(cli.log.as_deref())?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    runtime.block_on(async {
        match cli.command {
            Command::Notify(args) => notify::run(args).await,
        }
    })
}
