//! `db_url`: `sqlite://PATH` (relative to the config file's directory; `sqlite:///abs/path` is
//! absolute, and so is Kamailio's `sqlite:////abs/path`: Kamailio itself reads `sqlite:///x` as
//! `x` relative to its working directory, which is `/` once daemonised) or
//! `postgres://user:pass@host:port/db` (also `postgresql://`, and libpq's `?host=/socket/dir` for
//! a unix socket).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A parsed database URL.
#[derive(Clone)]
pub enum DbUrl {
    /// An SQLite file (absolute path).
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(Box<PgUrl>),
}

/// A PostgreSQL URL: the connection settings and the URL with its password hidden.
#[derive(Clone)]
pub struct PgUrl {
    /// Connection settings.
    pub config: tokio_postgres::Config,
    /// The URL as given, password replaced by `***`.
    pub redacted: String,
}

impl DbUrl {
    /// Parse `url`; relative SQLite paths resolve against `base`.
    pub fn parse(url: &str, base: &Path) -> Result<DbUrl, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err("sqlite:// needs a file name, e.g. sqlite://ksrd.db".into());
            }
            let p = Path::new(rest);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            return Ok(DbUrl::Sqlite(p));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let config = tokio_postgres::Config::from_str(url)
                .map_err(|e| format!("bad PostgreSQL URL {}: {e}", redact(url)))?;
            if config.get_hosts().is_empty() {
                return Err(format!(
                    "PostgreSQL URL {} has no host (postgres://user:pass@host:port/db)",
                    redact(url)
                ));
            }
            if config.get_user().is_none() {
                return Err(format!(
                    "PostgreSQL URL {} has no user (postgres://user:pass@host:port/db)",
                    redact(url)
                ));
            }
            return Ok(DbUrl::Postgres(Box::new(PgUrl {
                config,
                redacted: redact(url),
            })));
        }
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or(url);
        Err(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite://FILE or postgres://user:pass@host:port/db"
        ))
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DbUrl::Postgres(pg) => f.write_str(&pg.redacted),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

/// `url` with the password of its user info and any `password=` parameter replaced by `***`.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (auth_end, _) = rest
        .char_indices()
        .find(|&(_, c)| c == '/' || c == '?')
        .unwrap_or((rest.len(), ' '));
    let mut out = format!("{scheme}://");
    let (authority, tail) = rest.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***@")),
                None => out.push_str(&format!("{userinfo}@")),
            }
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            out.push_str(&q.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        let base = Path::new("/etc/ksrd");
        match DbUrl::parse("sqlite://ksrd.db", base).unwrap() {
            DbUrl::Sqlite(p) => assert_eq!(p, Path::new("/etc/ksrd/ksrd.db")),
            _ => panic!(),
        }
        match DbUrl::parse("sqlite:///var/lib/ksrd/k.db", base).unwrap() {
            DbUrl::Sqlite(p) => assert_eq!(p, Path::new("/var/lib/ksrd/k.db")),
            _ => panic!(),
        }
        match DbUrl::parse("sqlite:////var/lib/ksrd/k.db", base).unwrap() {
            DbUrl::Sqlite(p) => assert!(p.is_absolute() && p.ends_with("var/lib/ksrd/k.db")),
            _ => panic!(),
        }
        assert!(DbUrl::parse("sqlite://", base).is_err());
    }

    #[test]
    fn postgres_urls() {
        let u = DbUrl::parse(
            "postgres://kamailio:s3cret@db.example:5433/kam",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(u.to_string(), "postgres://kamailio:***@db.example:5433/kam");
        match &u {
            DbUrl::Postgres(pg) => {
                assert_eq!(pg.config.get_user(), Some("kamailio"));
                assert_eq!(pg.config.get_dbname(), Some("kam"));
                assert_eq!(pg.config.get_ports(), &[5433]);
            }
            _ => panic!(),
        }
        let u = DbUrl::parse(
            "postgresql://ksrd@/ksrd?host=/tmp/pg&port=6000&password=x",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            u.to_string(),
            "postgresql://ksrd@/ksrd?host=/tmp/pg&port=6000&password=***"
        );
        assert!(DbUrl::parse("postgres://host/db", Path::new("."))
            .unwrap_err()
            .contains("no user"));
        assert!(DbUrl::parse("mysql://k:p@h/db", Path::new("."))
            .unwrap_err()
            .contains("\"mysql\""));
        assert!(
            !DbUrl::parse("postgres://u:pw@h:notaport/db", Path::new("."))
                .unwrap_err()
                .contains("pw")
        );
    }
}
