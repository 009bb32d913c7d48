//! Configuration: `ksrd --check`, errors that name the key and the file, script errors with
//! file:line, unknown modparam modules as a warning, relative paths.
mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// A temp dir with routes/r.py (a good route) and a config named `name` with the harness's
/// default text plus `extra`.
fn setup(name: &str, route: &str, extra: &str) -> (TempDir, PathBuf) {
    let d = TempDir::new("cfg");
    fs::create_dir_all(d.path().join("routes")).unwrap();
    fs::write(d.path().join("routes/r.py"), route).unwrap();
    let cfg = d.path().join(name);
    let t = Ksrd::config_text(
        free_port(),
        free_tcp_port(),
        d.path(),
        "routes/r.py",
        true,
        extra,
    );
    fs::write(&cfg, t).unwrap();
    (d, cfg)
}

fn warn_lines(out: &str, needle: &str) -> usize {
    out.lines()
        .filter(|l| l.contains("WARN") && l.contains(needle))
        .count()
}

#[test]
fn version_flag() {
    let o = ksrd_cmd().arg("--version").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("ksrd "),
        "{}",
        text(&o)
    );
}

#[test]
fn check_accepts_the_repository_default_config() {
    let src = repo_path("ksrd.toml");
    let t = fs::read_to_string(&src)
        .unwrap_or_else(|e| panic!("{}: {e} (the default config)", src.display()));
    let d = TempDir::new("cfg");
    let port = free_port();
    let rpc = free_tcp_port();
    // patch it the way shared/checks/ksrd-env.sh does
    let mut out = String::new();
    let mut file_done = false;
    for line in t.lines() {
        let mut l = line.replace("127.0.0.1:5060", &format!("127.0.0.1:{port}"));
        for p in ["5071", "8080", "5080"] {
            l = l.replace(&format!("127.0.0.1:{p}"), &format!("127.0.0.1:{rpc}"));
        }
        if let Some(i) = l.find("sqlite://") {
            let end = l[i..].find('"').map(|e| i + e).unwrap_or(l.len());
            l = format!(
                "{}sqlite://{}{}",
                &l[..i],
                d.path().join("ksrd.db").display(),
                &l[end..]
            );
        }
        if !file_done && l.trim_start().starts_with("file") && l.contains('=') {
            let route = repo_path("routes/default.py");
            l = format!("file = \"{}\"", route.display());
            file_done = true;
        }
        out.push_str(&l);
        out.push('\n');
    }
    assert!(file_done, "ksrd.toml has a [script] file key");
    let cfg = d.path().join("ksrd.toml");
    fs::write(&cfg, out).unwrap();
    let o = ksrd_check(&cfg);
    assert!(
        o.status.success(),
        "--check on the default config failed:\n{}",
        text(&o)
    );
}

#[test]
fn check_accepts_harness_config() {
    let (_d, cfg) = setup(
        "good.toml",
        DEFAULT_TEST_ROUTE,
        "[modparam.maxfwd]\nmax_limit = 70\n",
    );
    let o = ksrd_check(&cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        warn_lines(&text(&o), "maxfwd"),
        0,
        "a known module's modparam is no warning:\n{}",
        text(&o)
    );
}

#[test]
fn relative_paths_resolve_against_the_config_dir() {
    let (_d, cfg) = setup("rel.toml", DEFAULT_TEST_ROUTE, "");
    let o = ksrd_cmd()
        .args(["--check", "--config"])
        .arg(&cfg)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "routes/r.py relative to the config's directory, not the cwd:\n{}",
        text(&o)
    );
}

fn assert_names(o: &Output, cfg: &Path, key: &str) {
    let t = text(o);
    assert!(!o.status.success(), "must fail:\n{t}");
    assert!(t.contains(key), "message names the key `{key}`:\n{t}");
    let fname = cfg.file_name().unwrap().to_string_lossy();
    assert!(t.contains(&*fname), "message names the file {fname}:\n{t}");
}

#[test]
fn unknown_top_level_key() {
    let (_d, cfg) = setup(
        "unknown-top.toml",
        DEFAULT_TEST_ROUTE,
        "bogus_top_key = 1\n",
    );
    assert_names(&ksrd_check(&cfg), &cfg, "bogus_top_key");
}

#[test]
fn unknown_key_in_table() {
    let (_d, cfg) = setup("unknown-table.toml", DEFAULT_TEST_ROUTE, "");
    let t = fs::read_to_string(&cfg).unwrap();
    assert!(t.contains("level = \"info\"\n"));
    fs::write(
        &cfg,
        t.replace(
            "level = \"info\"\n",
            "level = \"info\"\nlevell = \"debug\"\n",
        ),
    )
    .unwrap();
    assert_names(&ksrd_check(&cfg), &cfg, "levell");
}

#[test]
fn bad_value_type() {
    let (_d, cfg) = setup("bad-type.toml", DEFAULT_TEST_ROUTE, "workers = \"x\"\n");
    assert_names(&ksrd_check(&cfg), &cfg, "workers");
}

#[test]
fn bad_on_exception_value() {
    let (_d, cfg) = setup(
        "bad-onexc.toml",
        DEFAULT_TEST_ROUTE,
        "on_exception = \"explode\"\n",
    );
    assert_names(&ksrd_check(&cfg), &cfg, "on_exception");
}

#[test]
fn bad_listen_value() {
    let (_d, cfg) = setup(
        "bad-listen.toml",
        DEFAULT_TEST_ROUTE,
        "listen = [\"carrier-pigeon:1.2.3.4:5\"]\n",
    );
    assert_names(&ksrd_check(&cfg), &cfg, "listen");
}

#[test]
fn script_syntax_error_names_file_and_line() {
    let (d, cfg) = setup(
        "script-err.toml",
        "import KSR\n\n\ndef mod_init(:\n    pass\n",
        "",
    );
    let o = ksrd_check(&cfg);
    let t = text(&o);
    assert!(!o.status.success(), "must fail:\n{t}");
    let route = d.path().join("routes/r.py");
    let colon = "r.py:4";
    let py = "r.py\", line 4";
    assert!(
        t.contains(colon) || t.contains(py),
        "names {} and line 4:\n{t}",
        route.display()
    );
}

#[test]
fn script_without_mod_init_fails_check() {
    let (_d, cfg) = setup("no-modinit.toml", "import KSR\nX = 1\n", "");
    let o = ksrd_check(&cfg);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("mod_init"), "{}", text(&o));
}

#[test]
fn missing_route_file_names_it() {
    let (d, cfg) = setup("missing-route.toml", DEFAULT_TEST_ROUTE, "");
    fs::remove_file(d.path().join("routes/r.py")).unwrap();
    let o = ksrd_check(&cfg);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("r.py"), "{}", text(&o));
}

#[test]
fn unknown_modparam_module_is_one_warning() {
    let (_d, cfg) = setup(
        "modparam.toml",
        DEFAULT_TEST_ROUTE,
        "[modparam.nosuchmodule]\nsome_param = 3\n",
    );
    let o = ksrd_check(&cfg);
    let t = text(&o);
    assert!(
        o.status.success(),
        "an unknown module is not an error:\n{t}"
    );
    assert_eq!(
        warn_lines(&t, "nosuchmodule"),
        1,
        "exactly one warning line naming it:\n{t}"
    );
}

#[test]
fn startup_fails_on_config_error() {
    let k = Ksrd::start_opts(StartOpts {
        route_src: Some(DEFAULT_TEST_ROUTE.into()),
        extra_toml: "no_such_setting = true\n".into(),
        no_wait: true,
        ..Default::default()
    });
    assert!(
        wait_until(Duration::from_secs(10), || k.exited().is_some()
            || !k.is_running()),
        "ksrd must exit on a config error"
    );
    let log = k.log();
    assert!(
        log.contains("no_such_setting") && log.contains("ksrd.toml"),
        "log:\n{log}"
    );
}

#[test]
fn startup_fails_on_script_error() {
    let k = Ksrd::start_opts(StartOpts {
        route_src: Some("import KSR\ndef mod_init(:\n".into()),
        no_wait: true,
        ..Default::default()
    });
    assert!(
        wait_until(Duration::from_secs(10), || k.exited().is_some()
            || !k.is_running()),
        "ksrd must not serve without routes"
    );
    let log = k.log();
    assert!(log.contains("r.py"), "log names the route file:\n{log}");
}

#[test]
fn start_with_modparam_and_define_serves() {
    let src = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        KSR.sl.sl_send_reply(200, "def " + str(KSR.kx.get_def("MY_DEF")))
        return 1
"#;
    let k = Ksrd::start(
        src,
        "[define]\nMY_DEF = \"hello-define\"\n\n[modparam.maxfwd]\nmax_limit = 70\n",
    );
    let r = k.options();
    assert_eq!((r.code, r.reason.as_str()), (200, "def hello-define"));
}

#[test]
fn usrloc_db_mode_out_of_range() {
    let (_d, cfg) = setup(
        "ul-mode.toml",
        DEFAULT_TEST_ROUTE,
        "[modparam.usrloc]\ndb_mode = 7\n",
    );
    assert_names(&ksrd_check(&cfg), &cfg, "modparam.usrloc.db_mode");
}

#[test]
fn usrloc_db_mode_without_a_database() {
    let (_d, cfg) = setup(
        "ul-nodb.toml",
        DEFAULT_TEST_ROUTE,
        "db_url = \"\"\n[modparam.usrloc]\ndb_mode = 1\n",
    );
    let o = ksrd_check(&cfg);
    assert_names(&o, &cfg, "modparam.usrloc.db_mode");
    assert!(text(&o).contains("db_url"), "{}", text(&o));
}
