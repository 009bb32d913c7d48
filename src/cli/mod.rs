//! Subcommands that work on the configured database: `ksrd db init` and
//! `ksrd subscriber add|passwd|rm|list` (like Kamailio's `kamdbctl create` and `kamctl add`).
//! Their job is to print to stdout; errors go back to main, which prints them and sets the exit code.

pub mod db;
pub mod subscriber;

use crate::config::Config;
use crate::db::{Db, DbError};

/// Usage lines of the subcommands.
pub const USAGE: &str = "       ksrd [--config FILE] db init
       ksrd [--config FILE] subscriber add USER@DOMAIN PASSWORD   (PASSWORD - reads it from stdin)
       ksrd [--config FILE] subscriber passwd USER@DOMAIN PASSWORD
       ksrd [--config FILE] subscriber rm USER@DOMAIN
       ksrd [--config FILE] subscriber list";

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong arguments (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The command could not do its job (exit code 1).
    #[error("{0}")]
    Failed(String),
    /// A database error (exit code 1).
    #[error("{url}: {err}")]
    Db {
        /// The database (password hidden).
        url: String,
        /// The error.
        err: DbError,
    },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) | CliError::Db { .. } => 1,
        }
    }
}

/// True when `word` starts a subcommand.
pub fn is_subcommand(word: &str) -> bool {
    matches!(word, "db" | "subscriber")
}

/// Run the subcommand `args` (its name first) against the database of `cfg`.
pub fn run(args: &[String], cfg: &Config) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["db", rest @ ..] => rt.block_on(db::run(rest, cfg)),
        ["subscriber", rest @ ..] => rt.block_on(subscriber::run(rest, cfg)),
        [other, ..] => Err(CliError::Usage(format!("unknown command {other:?}"))),
        [] => Err(CliError::Usage("no command".into())),
    }
}

/// Open the configured database (no schema work).
pub(crate) async fn open(cfg: &Config) -> Result<Db, CliError> {
    let url = cfg
        .db
        .url
        .as_ref()
        .ok_or_else(|| CliError::Failed(format!("{}: no db_url configured", cfg.file)))?;
    Db::open(&cfg.db).await.map_err(|err| CliError::Db {
        url: url.to_string(),
        err,
    })
}

/// Attach the database URL to an error.
pub(crate) fn db_err(db: &Db) -> impl Fn(DbError) -> CliError + '_ {
    move |err| CliError::Db {
        url: db.url().to_string(),
        err,
    }
}
