#!/usr/bin/env bash
# Install what the benchmarks need on Debian 12 (idempotent): Kamailio 5.6 with app_python3 and
# SQLite and PostgreSQL modules (the reference servers of ../shared/bench/compare.sh), SIPp, sqlite3.
set -euo pipefail
PKGS=(kamailio kamailio-python3-modules kamailio-sqlite-modules kamailio-postgres-modules sip-tester sqlite3)
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench/install.sh: all present (${PKGS[*]})"
  exit 0
fi
echo "bench/install.sh: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
# the Debian package enables a kamailio service on 5060; the bench starts its own instances
if command -v systemctl >/dev/null && systemctl is-active --quiet kamailio 2>/dev/null; then
  "${SUDO[@]}" systemctl stop kamailio || true
fi
