#!/bin/bash
# bench/register.sh RATE [VARIANTS]: REGISTER with digest auth (../shared/bench W2: REGISTER → 401 →
# REGISTER with credentials → 200, users user0001..user1000) at one fixed rate, on Kamailio 5.6 native
# cfg, Kamailio app_python3 and ksrd running the same logic, REPEAT times each (interleaved), and prints
# every run and the median server CPU µs per SIP request. Variants:
#   sqlite    credentials read from the SQLite subscriber table on every REGISTER (W2's own cfgs and w2.py)
#   htable    credentials cached in an htable after a user's first success (bench/register/cache*)
#   postgres  W2 with the subscriber table in PostgreSQL (a throwaway cluster made here)
# The CPU figures come from ../shared/bench/run.sh (TARGET custom for all three, so each is measured the
# same way).   bench/register.sh 1000 "sqlite htable"     REPEAT=5 STEP_SECS=10 bench/register.sh 1000
# Needs bench/install.sh (Kamailio with python3, sqlite and postgres modules, SIPp, sqlite3), the Debian
# postgresql package, and ksrd built with cargo build --release. ksrd runs KSRD_WORKERS workers (default 1,
# its own default: with one GIL, more workers only pay off when routes wait on a database).
set -u
RATE=${1:?usage: register.sh RATE [VARIANTS]}
VARIANTS=${2:-"sqlite htable postgres"}
REPEAT=${REPEAT:-3}
STEP_SECS=${STEP_SECS:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$REPO/../shared/bench}
KSRD=${KSRD:-$REPO/target/release/ksrd}
TARGETS=${TARGETS:-"kamailio-native kamailio-python ksrd"}
OUT=${OUT:-$(mktemp -d -t bench-register.XXXXXX)}
PGPORT=${PGPORT:-25432}
[ -x "$SHARED/run.sh" ] || { echo "missing $SHARED/run.sh (the shared bench harness)" >&2; exit 2; }
[ -x "$KSRD" ] || { echo "build ksrd first: cargo build --release" >&2; exit 2; }
mkdir -p "$OUT"
echo "output in $OUT"

DB=$OUT/users.sqlite
"$SHARED/lib/mkdb.sh" "$DB"

# ---- PostgreSQL: a throwaway cluster with Kamailio's schema and the bench users -------------------
PGD=$OUT/pg
pg_stop() { [ -d "$PGD/data" ] && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGD/data" -m fast stop > /dev/null 2>&1; }
if [[ " $VARIANTS " == *" postgres "* ]]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PGBIN" ] || { echo "install postgresql first" >&2; exit 2; }
  [ -f /usr/share/kamailio/postgres/standard-create.sql ] || { echo "run bench/install.sh (kamailio-postgres-modules)" >&2; exit 2; }
  if [ "$(id -u)" -eq 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
  mkdir -p "$PGD"; [ "$(id -u)" -eq 0 ] && chown postgres "$PGD"
  "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGD/data" -A trust -U postgres > "$PGD/initdb.log" 2>&1 \
    || { cat "$PGD/initdb.log" >&2; exit 2; }
  "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w \
    -o "-p $PGPORT -k $PGD -c listen_addresses=127.0.0.1" start > /dev/null || { cat "$PGD/server.log" >&2; exit 2; }
  trap pg_stop EXIT
  PSQL=(psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres)
  "${PSQL[@]}" -c "CREATE DATABASE kamailio" postgres
  for f in standard auth_db usrloc; do "${PSQL[@]}" -f "/usr/share/kamailio/postgres/$f-create.sql" kamailio; done
  tail -n +2 "$SHARED/data/users.csv" | awk -F';' 'NF>=2 {printf "INSERT INTO subscriber (username,domain,password) VALUES (\x27%s\x27,\x27127.0.0.1\x27,\x27%s\x27);\n",$1,$2}' \
    | "${PSQL[@]}" kamailio
  PGURL="postgres://postgres@127.0.0.1:$PGPORT/kamailio"
  for f in native python; do sed 's/db_sqlite\.so/db_postgres.so/' "$SHARED/kamailio/w2-$f.cfg" > "$OUT/w2pg-$f.cfg"; done
fi

# ---- ksrd configs: the modparams of the Kamailio cfgs, one to one -------------------------------
ksrd_toml() { # DBURL SCRIPT EXTRA
  cat <<TOML
listen = ["udp:127.0.0.1:25060"]
workers = ${KSRD_WORKERS:-1}
db_url = "$1"
[script]
file = "$2"
watch = false
[log]
level = "warn"
[modparam.registrar]
max_expires = 3600
[modparam.usrloc]
db_mode = 0
preload = "location"
[modparam.auth_db]
calculate_ha1 = 1
password_column = "password"
use_domain = 0
$3
TOML
}
ksrd_toml "sqlite://$DB" "$SHARED/kamailio/w2.py" 'load_credentials = ""' > "$OUT/ksrd-sqlite.toml"
ksrd_toml "sqlite://$DB" "$HERE/register/cache.py" 'load_credentials = "$avp(pass)=password"
[modparam.htable]
htable = "auth=>size=10;autoexpire=3600"' > "$OUT/ksrd-htable.toml"
[ -n "${PGURL:-}" ] && ksrd_toml "$PGURL" "$SHARED/kamailio/w2.py" 'load_credentials = ""' > "$OUT/ksrd-postgres.toml"

server_cmd() { # VARIANT TARGET
  local kam="kamailio -DD -E -m 256 -M 32 -l udp:127.0.0.1:25060" flavor=${2#kamailio-}
  case "$1/$2" in
    */ksrd) echo "$KSRD --config $OUT/ksrd-$1.toml" ;;
    sqlite/*) echo "$kam -f $SHARED/kamailio/w2-$flavor.cfg -A 'DBURL=\"sqlite://$DB\"' -A 'KEMI_PY=\"$SHARED/kamailio/w2.py\"'" ;;
    htable/*) echo "$kam -f $HERE/register/cache-$flavor.cfg -A 'DBURL=\"sqlite://$DB\"' -A 'KEMI_PY=\"$HERE/register/cache.py\"'" ;;
    postgres/*) echo "$kam -f $OUT/w2pg-$flavor.cfg -A 'DBURL=\"$PGURL\"' -A 'KEMI_PY=\"$SHARED/kamailio/w2.py\"'" ;;
  esac
}

for v in $VARIANTS; do
  for i in $(seq 1 "$REPEAT"); do
    for t in $TARGETS; do
      r=$(SERVER_CMD=$(server_cmd "$v" "$t") START_RATE=$RATE MAX_RATE=$RATE BISECT=0 STEP_SECS=$STEP_SECS \
          OUT="$OUT/$v-$t-$i" timeout -k 5 600 "$SHARED/run.sh" W2 custom 2>&1 | grep '^RESULT' | tail -1)
      us=$(echo "$r" | grep -o 'srv_cpu_us_per_req=[0-9.]*' | cut -d= -f2)
      case "$r" in *"max_ok_rate=0 "*|"") us="" ;; esac
      echo "$v $t run $i: ${us:-failed} µs/req  ($r)"
      echo "$v $t ${us:-failed}" >> "$OUT/runs.txt"
    done
  done
done
echo "REGISTER+digest at $RATE/s, median server CPU µs per SIP request over $REPEAT runs:"
python3 - "$OUT/runs.txt" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, t, us = line.split()
    runs[(v, t)].append(us)
for (v, t), xs in runs.items():
    ok = [float(x) for x in xs if x != "failed"]
    med = f"{statistics.median(ok):.1f}" if ok else "failed"
    print(f"  {v:9} {t:16} {med:>8}   runs: {' '.join(xs)}")
PY
