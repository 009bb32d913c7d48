//! `ksrd --print-stubs` and `app_python.api_list` come from the same export tables.
use std::process::Command;

#[test]
fn stubs_cover_every_export_with_types_and_docs() {
    let out = Command::new(env!("CARGO_BIN_EXE_ksrd"))
        .arg("--print-stubs")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stubs = String::from_utf8(out.stdout).unwrap();
    assert!(stubs.contains("class sl:"), "{stubs}");
    assert!(
        stubs.contains("def sl_send_reply(code: int, reason: str) -> int:"),
        "{stubs}"
    );
    assert!(
        stubs.contains("def get(name: str) -> str | int | None:"),
        "{stubs}"
    );
    assert!(
        stubs.contains("def is_myself(uri: str) -> bool:"),
        "{stubs}"
    );
    let api = ksrd::script::rpc::api_list();
    let methods = api["methods"].as_array().unwrap();
    assert_eq!(api["msize"].as_u64().unwrap() as usize, methods.len());
    for m in methods {
        let name = m["func"]["name"].as_str().unwrap();
        assert!(
            stubs.contains(&format!("def {name}(")),
            "no stub for {name}"
        );
    }
    // A stub is valid Python.
    let py = Command::new("python3")
        .args(["-c", "import ast,sys; ast.parse(sys.stdin.read())"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(stubs.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(py.success());
}
