//! `ksrd subscriber add|passwd|rm|list`: manage the `subscriber` table like `kamctl add/passwd/rm`.
//! `ha1` = MD5(user:domain:password) and `ha1b` = MD5(user@domain:domain:password), the realm being
//! the domain; the plaintext password is stored only with `[db] store_plaintext_password = true`.

use std::io::BufRead;

use super::{db_err, open, CliError};
use crate::config::Config;
use crate::db::{Backend, Db, DbError, Subscriber};

/// Kamailio's table name.
const TABLE: &str = "subscriber";

fn usage() -> CliError {
    CliError::Usage(
        "usage: ksrd subscriber add USER@DOMAIN PASSWORD | passwd USER@DOMAIN PASSWORD | rm USER@DOMAIN | list"
            .into(),
    )
}

/// `subscriber ARGS...`.
pub async fn run(args: &[&str], cfg: &Config) -> Result<(), CliError> {
    match args {
        ["add", aor, pw] => {
            let (user, domain) = split_aor(aor)?;
            let pw = password(pw)?;
            let db = ready(cfg).await?;
            let s = Subscriber::with_password(user, domain, &pw, cfg.db.store_plaintext_password);
            match db.subscriber_add(TABLE, &s).await {
                Ok(()) => println!("subscriber {user}@{domain} added"),
                Err(DbError::Duplicate(_)) => {
                    return Err(CliError::Failed(format!(
                        "subscriber {user}@{domain} already exists"
                    )))
                }
                Err(e) => return Err(db_err(&db)(e)),
            }
        }
        ["passwd", aor, pw] => {
            let (user, domain) = split_aor(aor)?;
            let pw = password(pw)?;
            let db = ready(cfg).await?;
            let s = Subscriber::with_password(user, domain, &pw, cfg.db.store_plaintext_password);
            if !db.subscriber_update(TABLE, &s).await.map_err(db_err(&db))? {
                return Err(no_such(user, domain));
            }
            println!("password of {user}@{domain} changed");
        }
        ["rm", aor] => {
            let (user, domain) = split_aor(aor)?;
            let db = ready(cfg).await?;
            if !db
                .subscriber_remove(TABLE, user, domain)
                .await
                .map_err(db_err(&db))?
            {
                return Err(no_such(user, domain));
            }
            println!("subscriber {user}@{domain} removed");
        }
        ["list"] => {
            let db = ready(cfg).await?;
            for s in db.subscriber_list(TABLE).await.map_err(db_err(&db))? {
                println!("{}@{}", s.username, s.domain);
            }
        }
        _ => return Err(usage()),
    }
    Ok(())
}

fn no_such(user: &str, domain: &str) -> CliError {
    CliError::Failed(format!("no subscriber {user}@{domain}"))
}

/// The database, with an SQLite file's tables created as the server would on its first start.
async fn ready(cfg: &Config) -> Result<Db, CliError> {
    let db = open(cfg).await?;
    if db.backend() == Backend::Sqlite {
        db.prepare().await.map_err(db_err(&db))?;
    }
    Ok(db)
}

/// `USER@DOMAIN` → (user, domain). Unlike kamctl there is no default SIP_DOMAIN: the domain is
/// also the digest realm, so it is better spelt out.
fn split_aor(aor: &str) -> Result<(&str, &str), CliError> {
    let bad = |why: &str| CliError::Usage(format!("{aor:?}: {why}; expected USER@DOMAIN"));
    let (user, domain) = aor.split_once('@').ok_or_else(|| bad("no domain"))?;
    if user.is_empty() {
        return Err(bad("empty user"));
    }
    if domain.is_empty() {
        return Err(bad("empty domain"));
    }
    if domain.contains('@') {
        return Err(bad("more than one '@'"));
    }
    if aor.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains white space or control characters"));
    }
    Ok((user, domain))
}

/// The password argument; `-` reads one line from stdin (keeps it out of `ps` and shell history).
fn password(arg: &str) -> Result<String, CliError> {
    let pw = if arg == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Failed(format!("cannot read the password from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        arg.to_string()
    };
    if pw.is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aors() {
        assert_eq!(
            split_aor("alice@example.com").unwrap(),
            ("alice", "example.com")
        );
        for bad in ["alice", "@example.com", "alice@", "a@b@c", "al ice@x"] {
            assert_eq!(split_aor(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
