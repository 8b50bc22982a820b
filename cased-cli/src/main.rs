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
//! | 0 | done: the event was delivered (`notify`), the deployment is healthy or degraded (`monitor`, `demo`, `gate`), every check passed or warned (`check`) |
//! | 1 | the deployment is unhealthy (or failed, `gate`), a check failed or could not run, the API refused the request or could not be reached, a file could not be read or written |
//! | 2 | the verdict is inconclusive (too little data, a check that kept erroring, or Ctrl-C; for `gate` also unmonitored, or still pending when the wait ended) |
//! | 3 | usage, configuration or validation error (bad flags, an invalid event or configuration) |
//!
//! A **degraded** deployment exits 0: it has warnings, or failures within `failure_limit`, and it
//! is not rolled back (history counts it as a success too). The report and the progress lines
//! say "degraded", and on GitHub Actions a `::warning::` annotation is printed.

mod check;
mod completions;
mod demo;
mod demo_serve;
mod gate;
mod history;
mod monitor;
mod notify;
mod progress;
mod replay;
mod serve;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: the command did what it was asked.
const EXIT_OK: u8 = 0;
/// Exit code: the API refused the request or could not be reached.
const EXIT_API: u8 = 1;
/// Exit code: the verdict is inconclusive.
const EXIT_INCONCLUSIVE: u8 = 2;
/// Exit code: usage or validation error.
const EXIT_USAGE: u8 = 3;

/// The exit code of a session's verdict.
fn verdict_exit_code(verdict: cased_core::Verdict) -> u8 {
    match verdict {
        cased_core::Verdict::Healthy | cased_core::Verdict::Degraded => EXIT_OK,
        cased_core::Verdict::Unhealthy => EXIT_API,
        cased_core::Verdict::Inconclusive => EXIT_INCONCLUSIVE,
    }
}

/// Embeddable post-deployment monitoring: tell cased about deployments, monitor them from CI/CD,
/// query their history. Start with `cased demo`.
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
    /// Monitor a deployment with the checks of cased.toml; the exit code is the verdict.
    Monitor(monitor::MonitorArgs),
    /// List the deployments in history, or their statistics (`cased history stats`).
    History(history::HistoryArgs),
    /// Render the report of a deployment in history (Markdown, HTML or JSON).
    Report(history::ReportArgs),
    /// Run one check once (a URL, a check or monitor configuration file, or inline JSON).
    Check(check::CheckArgs),
    /// Watch cased catch a bad deploy of a local demo service (nothing to configure).
    Demo(demo::DemoArgs),
    /// Re-judge deployments in history under a (new) configuration and show which verdicts
    /// would change, and how much earlier or later the first finding would come.
    Replay(replay::ReplayArgs),
    /// Receive deployment events over HTTP (`POST /api/v1/deployments/`), monitor the ones
    /// matching a `[[services]]` entry, and serve their status, verdicts and reports.
    Serve(serve::ServeArgs),
    /// Create, list and revoke the API keys of `cased serve`.
    Keys(serve::KeysArgs),
    /// Wait for a deployment's final verdict on `cased serve`; the exit code is the verdict
    /// (0 pass, 1 fail, 2 inconclusive or still pending).
    Gate(gate::GateArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or PowerShell.
    Completions(completions::CompletionsArgs),
    /// Print the man page `cased(1)`, or write one page per subcommand with `--out-dir`.
    Man(completions::ManArgs),
}

/// Why a subcommand failed; decides the exit code and what is printed on stderr.
#[derive(Debug)]
enum Failure {
    /// From cased-core: validation errors exit 3, everything else (the API) exits 1.
    Core(cased_core::Error),
    /// Writing the answer to stdout failed.
    Io(std::io::Error),
    /// A usage or configuration problem, already worded for a person: exit 3.
    Usage(String),
    /// Something that could not be done (a file, a server): exit 1.
    Other(String),
    /// The command ran and its outcome is this exit code (a verdict, a check's outcome);
    /// everything was already printed.
    Exit(u8),
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
            Self::Core(_) | Self::Io(_) | Self::Other(_) => EXIT_API,
            Self::Usage(_) => EXIT_USAGE,
            Self::Exit(code) => *code,
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
            Self::Usage(m) | Self::Other(m) => eprintln!("error: {m}"),
            Self::Exit(_) => {}
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
    // Two workers: the demo serves HTTP while the session checks it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    match cli.command {
        Command::Keys(args) => return serve::keys(args),
        Command::Completions(args) => return completions::completions(&args),
        Command::Man(args) => return completions::man(&args),
        _ => {}
    }
    runtime.block_on(async {
        match cli.command {
            Command::Notify(args) => notify::run(args).await,
            Command::Gate(args) => gate::run(args).await,
            Command::Monitor(args) => monitor::run(args).await,
            Command::History(args) => history::run(args).await,
            Command::Report(args) => history::report(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Keys(args) => serve::keys(args),
            Command::Completions(args) => completions::completions(&args),
            Command::Man(args) => completions::man(&args),
        }
    })
}
