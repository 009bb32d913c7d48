//! `ksrd` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ksrd::config::{Config, EMBEDDED_DEFAULT};

const USAGE: &str = "usage: ksrd [--config FILE] [--check] [--print-stubs] [--version]
       ksrd [--config FILE] COMMAND ...   (see below)
  --config FILE, -f FILE   configuration (default: ./ksrd.toml, else built-in defaults)
  --check, -c              validate the config and compile the route script, then exit
  --print-stubs            print the KSR Python type stubs generated from the export tables
  --version, -V            print the version";

fn usage() -> String {
    format!(
        "{USAGE}\ncommands (on the database of db_url):\n{}",
        ksrd::cli::USAGE
    )
}

struct Opts {
    config: Option<PathBuf>,
    check: bool,
    /// A subcommand (`db ...`, `subscriber ...`) and its arguments.
    command: Vec<String>,
}

fn parse_args() -> Result<Option<Opts>, String> {
    let mut o = Opts {
        config: None,
        check: false,
        command: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if !o.command.is_empty() {
            // after the command word: its arguments, except --config/-f which may come anywhere
            match a.as_str() {
                "--config" | "-f" => {
                    o.config = Some(args.next().ok_or("--config needs a file")?.into())
                }
                s if s.starts_with("--config=") => o.config = Some(s["--config=".len()..].into()),
                _ => o.command.push(a),
            }
            continue;
        }
        match a.as_str() {
            "--config" | "-f" => {
                o.config = Some(args.next().ok_or("--config needs a file")?.into())
            }
            s if s.starts_with("--config=") => o.config = Some(s["--config=".len()..].into()),
            "--check" | "-c" => o.check = true,
            "--version" | "-V" | "-v" => {
                println!("{}", ksrd::core::rpc::version_string());
                return Ok(None);
            }
            "--print-stubs" => {
                print!("{}", ksrd::script::exports::stubs());
                return Ok(None);
            }
            "--help" | "-h" => {
                println!("{}", usage());
                return Ok(None);
            }
            s if ksrd::cli::is_subcommand(s) => o.command.push(a),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if o.check && !o.command.is_empty() {
        return Err(format!(
            "--check cannot be combined with a command\n{}",
            usage()
        ));
    }
    Ok(Some(o))
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let cfg = match path {
        Some(p) => Config::load(p)?,
        None if Path::new("ksrd.toml").exists() => Config::load(Path::new("ksrd.toml"))?,
        None => {
            let cwd = std::env::current_dir().context("current directory")?;
            Config::from_str(EMBEDDED_DEFAULT, "<embedded ksrd.toml>", &cwd)?
        }
    };
    Ok(cfg)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KSRD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ksrd: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match load_config(opts.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ksrd: config error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if !opts.command.is_empty() {
        // Commands report for themselves; logging stays off unless KSRD_LOG asks for it.
        init_logging("off");
        return match ksrd::cli::run(&opts.command, &cfg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ ksrd::cli::CliError::Usage(_)) => {
                eprintln!("ksrd: {e}\n(ksrd --help lists every command)");
                ExitCode::from(e.exit_code())
            }
            Err(e) => {
                eprintln!("ksrd: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    init_logging(&cfg.log_level);
    for m in &cfg.unknown_modules {
        tracing::warn!(module = %m, file = %cfg.file, "ksrd has no module {m:?}; its [modparam.{m}] parameters are ignored");
    }
    if opts.check {
        return match ksrd::server::check_script(&cfg) {
            Ok(()) => {
                eprintln!(
                    "ksrd: {}: config OK; route script {} OK",
                    cfg.file,
                    cfg.script.file.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ksrd: route script error:\n{e}");
                ExitCode::from(1)
            }
        };
    }
    match ksrd::server::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ksrd: {e}");
            ExitCode::from(1)
        }
    }
}
