//! `ksrd.toml`: listen sockets, aliases, script, RPC, logging and Kamailio-style module parameters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::modules::modparam::{self, ModParams};
use crate::transport::{ListenAddr, Proto};

/// The configuration ksrd runs with when no file is given (also the repository's `ksrd.toml`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../ksrd.toml");

/// A configuration error; the message always names the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{file}: key `{key}`: {msg}")]
    Value {
        file: String,
        key: String,
        msg: String,
    },
}

/// What to do when a route raises an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnException {
    /// Answer `500 Server Internal Error` unless the route already replied.
    #[default]
    Reply,
    /// Send nothing (Kamailio's behaviour).
    Silent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: Vec<String>,
    #[serde(default)]
    alias: Vec<String>,
    #[serde(default = "default_workers")]
    workers: usize,
    #[serde(default)]
    db_url: Option<String>,
    #[serde(default)]
    on_exception: OnException,
    #[serde(default)]
    script: ScriptConfig,
    #[serde(default)]
    rpc: RpcConfig,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    db: RawDbConfig,
    #[serde(default)]
    define: BTreeMap<String, toml::Value>,
    #[serde(default)]
    modparam: BTreeMap<String, toml::Table>,
}

fn default_listen() -> Vec<String> {
    vec!["udp:127.0.0.1:5060".into(), "tcp:127.0.0.1:5060".into()]
}
fn default_workers() -> usize {
    1
}

/// `[script]`: the Python route file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptConfig {
    /// Route file (Kamailio app_python3 `load`).
    #[serde(default = "default_script")]
    pub file: PathBuf,
    /// Reload automatically when a file in the script's directory changes.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Module-level function that returns the handler object (app_python3 `mod_init_function`).
    #[serde(default = "default_mod_init")]
    pub mod_init_function: String,
    /// Handler method called with the worker rank (app_python3 `child_init_method`).
    #[serde(default = "default_child_init")]
    pub child_init_method: String,
}
fn default_script() -> PathBuf {
    "routes/default.py".into()
}
fn yes() -> bool {
    true
}
fn default_mod_init() -> String {
    "mod_init".into()
}
fn default_child_init() -> String {
    "child_init".into()
}
impl Default for ScriptConfig {
    fn default() -> Self {
        ScriptConfig {
            file: default_script(),
            watch: true,
            mod_init_function: default_mod_init(),
            child_init_method: default_child_init(),
        }
    }
}

/// `[rpc]`: JSON-RPC endpoints.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RpcConfig {
    /// HTTP listen address (`127.0.0.1:5071`); empty string disables it.
    #[serde(default)]
    pub listen: Option<String>,
    /// Unix stream socket path.
    #[serde(default)]
    pub socket: Option<PathBuf>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter: `error`, `warn`, `info`, `debug`, `trace` or a directive list.
    #[serde(default = "default_level")]
    pub level: String,
}
fn default_level() -> String {
    "info".into()
}
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
        }
    }
}

/// `[db]`: storage options (the database itself is `db_url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDbConfig {
    /// Also store the plaintext password in `subscriber.password` (kamctl's STORE_PLAINTEXT_PW).
    #[serde(default)]
    store_plaintext_password: bool,
    /// Maximum number of database connections.
    #[serde(default = "default_pool_size")]
    pool_size: i64,
    /// Bound (ms) on waiting for a connection and on each database call.
    #[serde(default = "default_db_timeout")]
    timeout_ms: i64,
}
fn default_pool_size() -> i64 {
    8
}
fn default_db_timeout() -> i64 {
    3000
}
impl Default for RawDbConfig {
    fn default() -> Self {
        RawDbConfig {
            store_plaintext_password: false,
            pool_size: default_pool_size(),
            timeout_ms: default_db_timeout(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// File the config came from (or `<embedded>`).
    pub file: String,
    /// Sockets to listen on.
    pub listen: Vec<ListenAddr>,
    /// Extra names (host or host:port) that are "myself".
    pub alias: Vec<(String, Option<u16>)>,
    /// Number of Python worker threads.
    pub workers: usize,
    /// Database URL as written (`db_url`).
    pub db_url: Option<String>,
    /// Storage: `db_url` parsed (SQLite paths absolute) and the `[db]` options.
    pub db: crate::db::DbConfig,
    /// Behaviour on a Python exception.
    pub on_exception: OnException,
    /// Route script settings (paths absolute).
    pub script: ScriptConfig,
    /// HTTP JSON-RPC address.
    pub rpc_http: Option<std::net::SocketAddr>,
    /// Unix socket JSON-RPC path.
    pub rpc_socket: Option<PathBuf>,
    /// Log filter.
    pub log_level: String,
    /// `#!define`-like values for `KSR.kx.get_def`.
    pub defines: BTreeMap<String, String>,
    /// Module parameters, validated against the modules ksrd has.
    pub modparams: ModParams,
    /// Modules named under `[modparam]` that ksrd does not have.
    pub unknown_modules: Vec<String>,
    /// sqlops connections (`modparam.sqlops.sqlcon`), checked.
    pub sqlcon: Vec<crate::modules::sqlops::ConDef>,
}

impl Config {
    /// Load and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        Self::from_str(&text, &file, base)
    }

    /// Parse config text; relative paths are resolved against `base`.
    pub fn from_str(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            msg: e.to_string().trim_end().replace('\n', " | "),
        })?;
        let verr = |key: &str, msg: String| ConfigError::Value {
            file: file.to_string(),
            key: key.to_string(),
            msg,
        };
        let mut listen = Vec::new();
        for (i, l) in raw.listen.iter().enumerate() {
            let la = ListenAddr::parse(l).map_err(|m| verr(&format!("listen[{i}]"), m))?;
            listen.push(la);
        }
        if listen.is_empty() {
            return Err(verr(
                "listen",
                "at least one listen address is needed".into(),
            ));
        }
        if !listen.iter().any(|l| l.proto == Proto::Udp) {
            // Without UDP there is nothing for the run-to-completion workers to read; TCP still works.
            tracing::debug!("no UDP listener configured");
        }
        let mut alias = Vec::new();
        for (i, a) in raw.alias.iter().enumerate() {
            alias.push(parse_alias(a).map_err(|m| verr(&format!("alias[{i}]"), m))?);
        }
        if raw.workers == 0 || raw.workers > 64 {
            return Err(verr(
                "workers",
                format!("must be 1..=64, got {}", raw.workers),
            ));
        }
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut script = raw.script.clone();
        script.file = abs(&script.file);
        if script.file.extension().and_then(|e| e.to_str()) != Some("py") {
            return Err(verr(
                "script.file",
                format!("must name a .py file, got {}", script.file.display()),
            ));
        }
        let rpc_http = match raw.rpc.listen.as_deref() {
            None | Some("") => None,
            Some(s) => Some(
                s.trim_start_matches("http:")
                    .parse()
                    .map_err(|_| verr("rpc.listen", format!("not an ip:port address: {s:?}")))?,
            ),
        };
        let rpc_socket = raw
            .rpc
            .socket
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            .map(abs);
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log.level) {
            return Err(verr("log.level", e.to_string()));
        }
        let mut defines = BTreeMap::new();
        for (k, v) in raw.define {
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => (b as i32).to_string(),
                other => {
                    return Err(verr(
                        &format!("define.{k}"),
                        format!("must be a string or integer, got {}", other.type_str()),
                    ))
                }
            };
            defines.insert(k, s);
        }
        let db = crate::db::DbConfig {
            url: match raw.db_url.as_deref() {
                None | Some("") => None,
                Some(u) => Some(crate::db::DbUrl::parse(u, base).map_err(|m| verr("db_url", m))?),
            },
            store_plaintext_password: raw.db.store_plaintext_password,
            pool_size: match raw.db.pool_size {
                n @ 1..=1024 => n as usize,
                n => return Err(verr("db.pool_size", format!("must be 1..=1024, got {n}"))),
            },
            timeout: match raw.db.timeout_ms {
                n @ 1..=600_000 => std::time::Duration::from_millis(n as u64),
                n => {
                    return Err(verr(
                        "db.timeout_ms",
                        format!("must be 1..=600000 (ms), got {n}"),
                    ))
                }
            },
        };
        let (modparams, unknown_modules) =
            modparam::validate(&raw.modparam).map_err(|(key, msg)| verr(&key, msg))?;
        crate::modules::htable::validate(&modparams).map_err(|(key, msg)| verr(&key, msg))?;
        crate::modules::nathelper::validate(&modparams).map_err(|(key, msg)| verr(&key, msg))?;
        crate::modules::pike::validate(&modparams).map_err(|(key, msg)| verr(&key, msg))?;
        crate::modules::geoip2::validate(&modparams).map_err(|(key, msg)| verr(&key, msg))?;
        crate::modules::usrloc::validate(&modparams, db.url.is_some())
            .map_err(|(key, msg)| verr(&key, msg))?;
        let sqlcon = crate::modules::sqlops::validate(&modparams, base)
            .map_err(|(key, msg)| verr(&key, msg))?;
        let mut script_cfg = script;
        if let Some(load) = modparams.get_str("app_python3", "load") {
            script_cfg.file = abs(Path::new(load));
        }
        Ok(Config {
            file: file.to_string(),
            listen,
            alias,
            workers: raw.workers,
            db_url: raw.db_url,
            db,
            on_exception: raw.on_exception,
            script: script_cfg,
            rpc_http,
            rpc_socket,
            log_level: raw.log.level,
            defines,
            modparams,
            unknown_modules,
            sqlcon,
        })
    }
}

fn parse_alias(a: &str) -> Result<(String, Option<u16>), String> {
    let a = a.trim();
    // Kamailio accepts "proto:host:port" too; the proto is irrelevant for is_myself here.
    let a = ["udp:", "tcp:", "tls:", "sctp:", "ws:", "wss:"]
        .iter()
        .find_map(|p| a.strip_prefix(p))
        .unwrap_or(a);
    if a.is_empty() {
        return Err("empty alias".into());
    }
    if let Some(rest) = a.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or("unterminated IPv6 reference")?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
            None if tail.is_empty() => None,
            None => return Err(format!("bad alias {a:?}")),
        };
        return Ok((format!("[{host}]"), port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_ascii_lowercase(),
            Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
        )),
        _ => Ok((a.to_ascii_lowercase(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::from_str(EMBEDDED_DEFAULT, "<embedded>", Path::new("/x")).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.script.file, Path::new("/x/routes/default.py"));
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let e = Config::from_str(
            "listen = [\"udp:127.0.0.1:5060\"]\nfoo = 1\n",
            "my.toml",
            Path::new("."),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("my.toml") && s.contains("foo"), "{s}");
    }

    #[test]
    fn bad_value_names_key() {
        let e = Config::from_str("workers = \"x\"\n", "my.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.toml") && e.contains("workers"), "{e}");
        let e = Config::from_str("listen = [\"udp:nowhere\"]\n", "my.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen[0]"), "{e}");
    }

    #[test]
    fn db_settings() {
        let c = Config::from_str(EMBEDDED_DEFAULT, "<embedded>", Path::new("/x")).unwrap();
        assert_eq!(c.db.url.unwrap().to_string(), "sqlite:///x/ksrd.db");
        assert!(!c.db.store_plaintext_password);
        let c = Config::from_str(
            "db_url = \"postgres://k:pw@h/kam\"\n[db]\nstore_plaintext_password = true\ntimeout_ms = 500\n",
            "my.toml",
            Path::new("."),
        )
        .unwrap();
        assert!(c.db.store_plaintext_password);
        assert_eq!(c.db.timeout, std::time::Duration::from_millis(500));
        let e = Config::from_str(
            "db_url = \"mysql://k:pw@h/kam\"\n",
            "my.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("my.toml") && e.contains("db_url"), "{e}");
        let e = Config::from_str("[db]\npool_size = 0\n", "my.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("db.pool_size"), "{e}");
    }

    #[test]
    fn aliases() {
        assert_eq!(
            parse_alias("Example.COM").unwrap(),
            ("example.com".into(), None)
        );
        assert_eq!(
            parse_alias("udp:example.com:5070").unwrap(),
            ("example.com".into(), Some(5070))
        );
        assert_eq!(
            parse_alias("[::1]:5060").unwrap(),
            ("[::1]".into(), Some(5060))
        );
    }
}
