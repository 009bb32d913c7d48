//! `ksrd db init`: create Kamailio's tables and `version` rows in the configured database.

use super::{db_err, open, CliError};
use crate::config::Config;
use crate::db::TableState;

/// `db ARGS...`.
pub async fn run(args: &[&str], cfg: &Config) -> Result<(), CliError> {
    match args {
        ["init"] => init(cfg).await,
        _ => Err(CliError::Usage("usage: ksrd db init".into())),
    }
}

/// Create what is missing, report every table; fails when an existing table does not match.
async fn init(cfg: &Config) -> Result<(), CliError> {
    let db = open(cfg).await?;
    let report = db.init_schema(true).await.map_err(db_err(&db))?;
    println!("database {}", db.url());
    for (table, state) in &report.tables {
        let version = crate::db::schema::table(table)
            .map(|t| t.version)
            .unwrap_or(0);
        match state {
            TableState::Created | TableState::Present => {
                println!("  {table:<15} {state} (version {version})")
            }
            _ => println!("  {table:<15} {state}"),
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the database does not match Kamailio's schema:\n  {}",
            report.problems().join("\n  ")
        )))
    }
}
