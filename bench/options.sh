#!/usr/bin/env bash
# OPTIONS load through routes/default.py with SIPp at a fixed rate; prints the rate achieved and
# ksrd's CPU per request (utime+stime of all its threads from /proc, plus on-CPU ns from schedstat).
# Then, when ../shared/bench/compare.sh and Kamailio are there, runs W1 at the same rate against
# ksrd (running the KEMI file ../shared/bench/kamailio/w1.py), Kamailio native and Kamailio
# app_python3, one after the other, for a same-run comparison.
#   bench/options.sh [RATE=8000] [SECS=10]       (loopback only; bounded in time)
#   SKIP_COMPARE=1 to skip the comparison; NO_BUILD=1 to use the existing release binary; KEEP=1 keeps the temp dir.
set -euo pipefail
RATE=${1:-8000}
SECS=${2:-10}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v sipp >/dev/null || { echo "sipp missing: run bench/install.sh (Debian sip-tester)" >&2; exit 1; }

BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/ksrd
if [ -z "${NO_BUILD:-}" ]; then
  echo "== building ksrd (release)"
  cargo build --release -q
fi
[ -x "$BIN" ] || { echo "no $BIN (build it, or unset NO_BUILD)" >&2; exit 1; }

T=$(mktemp -d -t ksrd-bench.XXXXXX)
KPID=""
cleanup() {
  if [ -n "$KPID" ] && kill -0 "$KPID" 2>/dev/null; then
    kill "$KPID"; for _ in $(seq 1 30); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$KPID" 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c '
import socket
for _ in range(50):
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("127.0.0.1",0)); p=u.getsockname()[1]; u.close()
    t=socket.socket()
    try: t.bind(("127.0.0.1",p)); t.close(); print(p); break
    except OSError: t.close()'; }

PORT=$(free_port); RPC=$(free_port); UAC=$(free_port)
cat > "$T/ksrd.toml" <<TOML
listen = ["udp:127.0.0.1:$PORT"]
alias = ["localhost"]
workers = 1
db_url = "sqlite://$T/ksrd.db"
on_exception = "reply"

[script]
file = "$ROOT/routes/default.py"
watch = false

[rpc]
listen = "127.0.0.1:$RPC"
socket = "ksrd_rpc.sock"

[log]
level = "warn"
TOML

"$BIN" --config "$T/ksrd.toml" > "$T/ksrd.log" 2>&1 &
KPID=$!
up=""
for _ in $(seq 1 40); do
  kill -0 "$KPID" 2>/dev/null || break
  if (cd "$T" && timeout -k 1 3 sipp "127.0.0.1:$PORT" -sf "$ROOT/tests/sipp/options_uac.xml" -i 127.0.0.1 \
        -p "$UAC" -m 1 -timeout 2s -timeout_error -max_retrans 1 -nostdin > /dev/null 2>&1); then up=1; break; fi
  sleep 0.25
done
[ -n "$up" ] || { echo "ksrd did not answer OPTIONS on $PORT; log:" >&2; tail -20 "$T/ksrd.log" >&2; exit 1; }

# CPU of ksrd: clock ticks of the whole process (utime+stime, live and exited threads) and
# on-CPU nanoseconds summed over its threads
cpu() {
  local tk ns=0 s t
  tk=$(awk '{sub(/^.*\) /,""); print $12+$13}' "/proc/$KPID/stat")
  for t in /proc/$KPID/task/*; do
    s=$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null) && ns=$((ns + s))
  done
  echo "$tk $ns"
}
HZ=$(getconf CLK_TCK)
N=$((RATE * SECS))
echo "== SIPp: $N OPTIONS at $RATE/s through routes/default.py (ksrd pid $KPID, udp 127.0.0.1:$PORT)"
read -r tk0 ns0 < <(cpu)
t0=$(date +%s%N)
rc=0
(cd "$T" && timeout -k 5 $((SECS * 3 + 30)) sipp "127.0.0.1:$PORT" -sf "$ROOT/tests/sipp/options_uac.xml" \
   -i 127.0.0.1 -p "$UAC" -m "$N" -r "$RATE" -l $((RATE * 10 + 100)) -timeout $((SECS * 2 + 15))s -timeout_error \
   -buff_size 4194304 -nostdin -trace_stat -stf stat.csv -fd 1 > sipp.out 2>&1) || rc=$?
t1=$(date +%s%N)
read -r tk1 ns1 < <(cpu)

ok=$(python3 - "$T/stat.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h = rows[0]; last = rows[-1]
print(last[h.index("SuccessfulCall(C)")], last[h.index("FailedCall(C)")], last[h.index("Retransmissions(C)")])
PY
) || ok="0 ? ?"
read -r succ failed retrans <<< "$ok"
el_ns=$((t1 - t0))
python3 - "$succ" "$failed" "$retrans" "$el_ns" "$((tk1 - tk0))" "$HZ" "$((ns1 - ns0))" "$RATE" "$rc" <<'PY'
import sys
succ, failed, retrans, el_ns, ticks, hz, ns, rate, rc = sys.argv[1:]
succ = int(succ); el = int(el_ns) / 1e9; ticks = int(ticks); hz = int(hz); ns = int(ns)
print(f"sipp exit {rc}: successful {succ}, failed {failed}, retransmissions {retrans}, wall {el:.2f} s")
print(f"requests/s achieved: {succ / el:.0f} (target {rate})")
if succ:
    print(f"server CPU µs per request: {ns / 1e3 / succ:.1f} (schedstat), "
          f"{ticks / hz * 1e6 / succ:.1f} (utime+stime, {ticks} ticks)")
PY
[ "$rc" -eq 0 ] || echo "warning: sipp reported failed calls (exit $rc); see $T/sipp.out (KEEP=1 keeps it)" >&2
kill "$KPID"; wait "$KPID" 2>/dev/null || true; KPID=""

COMPARE=$ROOT/../shared/bench/compare.sh
if [ -z "${SKIP_COMPARE:-}" ] && [ -f "$COMPARE" ] && command -v kamailio >/dev/null; then
  SB=$(cd "$ROOT/../shared/bench" && pwd)
  cat > "$T/bench-w1.toml" <<TOML
listen = ["udp:127.0.0.1:25060"]
alias = ["localhost"]
workers = 1
db_url = "sqlite://$T/bench.db"

[script]
file = "$SB/kamailio/w1.py"
watch = true

[rpc]
listen = "127.0.0.1:$RPC"
socket = "ksrd_bench_rpc.sock"

[log]
level = "warn"
TOML
  echo "== same-run comparison at $RATE/s: ../shared/bench/compare.sh W1 $RATE"
  SERVER_CMD="$BIN --config $T/bench-w1.toml" timeout -k 10 900 bash "$COMPARE" W1 "$RATE"
else
  echo "(comparison skipped: needs ../shared/bench/compare.sh and kamailio — bench/install.sh)"
fi
