#!/usr/bin/env bash
# Install what ksrd needs on Debian 12 (idempotent) and build it: `cargo build --release`.
# Run as root or as a user with sudo. Safe to run again: installs only what is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

say() { printf '\n==> %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
  echo "install.sh: needs root or sudo to install Debian packages" >&2; SUDO=(false); fi

# ---------------------------------------------------------------- Debian packages
PKGS=(build-essential pkg-config python3 python3-dev python3-venv python3-pip libpython3-dev sip-tester sqlite3 curl)
missing=()
for p in "${PKGS[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all present"
fi

# ---------------------------------------------------------------- Rust
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  say "installing Rust with rustup (cargo not found)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
say "$(cargo --version)"

# ---------------------------------------------------------------- Python for pyo3
# ksrd embeds CPython through pyo3, which needs a shared libpython. Keep the python3 on PATH when it has
# one (so the build matches a plain `cargo build`); otherwise point pyo3 at Debian's /usr/bin/python3.
shared() { "$1" -c 'import sysconfig,sys; sys.exit(0 if sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)' 2>/dev/null; }
if [ -n "${PYO3_PYTHON:-}" ]; then
  say "pyo3 uses PYO3_PYTHON=$PYO3_PYTHON (from the environment)"
elif shared "$(command -v python3)"; then
  say "pyo3 uses $(command -v python3) ($(python3 --version), shared libpython)"
elif shared /usr/bin/python3; then
  export PYO3_PYTHON=/usr/bin/python3
  say "python3 on PATH has no shared libpython; pyo3 uses PYO3_PYTHON=$PYO3_PYTHON"
else
  echo "install.sh: no python3 with a shared libpython (Py_ENABLE_SHARED=1); install libpython3-dev" >&2
  exit 1
fi

# ---------------------------------------------------------------- build
say "cargo build --release"
cargo build --release
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ksrd"
[ -x "$BIN" ] || { echo "install.sh: no $BIN after the build" >&2; exit 1; }
if ldd "$BIN" | grep -q 'not found'; then
  echo "install.sh: $BIN has unresolved shared libraries:" >&2; ldd "$BIN" | grep 'not found' >&2; exit 1
fi
say "built $BIN"
