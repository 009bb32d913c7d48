#!/usr/bin/env bash
# The whole test suite: install + build, Rust tests (unit + integration), Python tests, acceptance checks.
# Exits non-zero on the first failing section.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

section() { printf '\n======== %s ========\n' "$*"; }

section "install + release build (scripts/install.sh)"
# postgresql: the server binaries (initdb, postgres, pg_ctl) for the throwaway test clusters
# sipvicious: svcrack, a real brute-force tool, against routes/security.py (tests/routes_security.rs)
# iproute2 + nftables: the NAT lab of tests/nat_netns.rs (network namespaces, MASQUERADE)
# sipsak: the flood of tests/flood.rs
scripts/install.sh postgresql sipvicious iproute2 nftables sipsak
if ! command -v cargo >/dev/null; then export PATH="$HOME/.cargo/bin:$PATH"; fi

section "Kamailio's SQL schema files (tests/db.rs compares ksrd's schema with them)"
# Unpacked from the Debian packages without installing Kamailio; kept between runs.
KSQL="${CARGO_TARGET_DIR:-$ROOT/target}/kamailio-sql"
if [ -f "$KSQL/postgres/standard-create.sql" ] && [ -f "$KSQL/db_sqlite/standard-create.sql" ]; then
  echo "present in $KSQL"
else
  tmp=$(mktemp -d)
  fetch() { (cd "$tmp" && apt-get download -q kamailio-postgres-modules kamailio-sqlite-modules); }
  if fetch || { apt-get update -q >/dev/null 2>&1 || sudo apt-get update -q >/dev/null 2>&1; fetch; }; then
    for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/x"; done
    mkdir -p "$KSQL"
    cp -r "$tmp/x/usr/share/kamailio/postgres" "$tmp/x/usr/share/kamailio/db_sqlite" "$KSQL/"
    echo "unpacked into $KSQL"
  else
    echo "could not download Kamailio's packages: the comparisons with its SQL files are skipped" >&2
  fi
  rm -rf "$tmp"
fi
export KSRD_KAMAILIO_SQL="$KSQL"

section "Rust tests: cargo test --all-targets"
cargo test --all-targets

section "Python tests: pytest python/tests"
VENV="$ROOT/.venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import pytest' 2>/dev/null || "$VENV/bin/python" -m pip install -q pytest
rc=0
"$VENV/bin/python" -m pytest -q -p no:cacheprovider python/tests || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests in python/tests: that is a failure (tests are expected there)" >&2
  exit 1
elif [ "$rc" -ne 0 ]; then
  echo "pytest failed (exit $rc)" >&2
  exit "$rc"
fi

CHECKS="$ROOT/../shared/checks"
if [ -d "$CHECKS" ]; then
  for c in foundation-reload foundation-torture; do
    section "acceptance check: $c"
    # the checks build and run ./target/release/ksrd, so they must not see a CARGO_TARGET_DIR
    env -u CARGO_TARGET_DIR bash "$CHECKS/$c"
  done
else
  section "acceptance checks: $CHECKS not found, skipped"
fi

section "all tests passed"
