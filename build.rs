//! Embed an rpath to the libpython that pyo3 links, so `ksrd` runs without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let py = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    if let Ok(out) = std::process::Command::new(py)
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_config_var('LIBDIR') or '')",
        ])
        .output()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}
