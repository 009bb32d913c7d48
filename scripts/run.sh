#!/usr/bin/env bash
# Install (if needed), build and start ksrd in the foreground with ./ksrd.toml. Extra args go to ksrd.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/install.sh
exec "${CARGO_TARGET_DIR:-target}/release/ksrd" --config ksrd.toml "$@"
