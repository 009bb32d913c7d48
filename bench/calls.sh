#!/bin/bash
# bench/calls.sh RATE: record-routed calls (INVITE/100/180/200/ACK, pause, BYE/200) from a SIPp UAC
# through the proxy to a SIPp UAS, at one fixed rate, against Kamailio 5.6 native cfg, Kamailio
# app_python3 and ksrd, one after the other; prints server CPU µs per call and per SIP request.
# All three run the same logic: bench/calls/native.cfg and bench/calls/route.py (the KEMI file
# app_python3 and ksrd both run unmodified). No registrar: every call goes to the UAS directly.
# Uses the SIPp scenarios and summarizer of ../shared/bench (W3's call_uac.xml/call_uas.xml).
#   bench/calls.sh 200            STEP_SECS=20 CALL_PAUSE_MS=1000 TARGETS="ksrd kamailio-native"
# Needs: kamailio, kamailio-python3-modules, sip-tester; ksrd built with cargo build --release.
set -u
RATE=${1:?usage: calls.sh RATE}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$REPO/../shared/bench}
STEP_SECS=${STEP_SECS:-10}
CALL_PAUSE_MS=${CALL_PAUSE_MS:-1000}
TARGETS=${TARGETS:-"kamailio-native kamailio-python ksrd"}
KSRD=${KSRD:-$REPO/target/release/ksrd}
SC=$SHARED/scenarios
SIPP_COMMON="-i 127.0.0.1 -bind_local -nostdin -buff_size 4194304"
OUT=${OUT:-$(mktemp -d -t bench-calls.XXXXXX)}
[ -d "$SC" ] || { echo "missing $SC (the shared bench harness)" >&2; exit 2; }
[ -x "$KSRD" ] || { echo "build ksrd first: cargo build --release" >&2; exit 2; }

tree_pids() {
  local all=$1 frontier=$1 next
  while [ -n "$frontier" ]; do
    next=$(for p in $frontier; do cat /proc/$p/task/*/children 2>/dev/null; done | tr ' ' '\n' | grep .)
    frontier=$next; all="$all $next"
  done
  echo $all
}
server_cpu() { # "schedstat-ns ticks" of every thread of the server's process tree
  local ns=0 tk=0 p t s
  for p in $(tree_pids "$SPID"); do
    for t in /proc/$p/task/*; do s=$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null) && ns=$((ns + s)); done
    s=$(awk '{sub(/^.*\) /,""); print $12+$13}' "/proc/$p/stat" 2>/dev/null) && tk=$((tk + s))
  done
  echo "$ns $tk"
}
stop_server() {
  kill -TERM "$SPID" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
}

run_one() { # TARGET
  local T=$1 D=$OUT/$1 N=$((RATE * STEP_SECS)) tmo=$((STEP_SECS * 2 + 20))
  mkdir -p "$D"
  case $T in
    kamailio-native) (cd "$HERE/calls" && exec kamailio -f native.cfg -DD -E -m 256 -M 32 -l udp:127.0.0.1:25060) > "$D/server.log" 2>&1 & ;;
    kamailio-python) (cd "$HERE/calls" && exec kamailio -f python.cfg -DD -E -m 256 -M 32 -l udp:127.0.0.1:25060 \
                        -A "KEMI_PY=\"$HERE/calls/route.py\"") > "$D/server.log" 2>&1 & ;;
    ksrd) (cd "$HERE/calls" && exec "$KSRD" --config ksrd.toml) > "$D/server.log" 2>&1 & ;;
  esac
  SPID=$!
  local up=0
  for _ in $(seq 1 20); do
    if (cd "$D" && timeout -k 1 4 sipp 127.0.0.1:25060 -sf "$SC/options.xml" $SIPP_COMMON -p 25071 -m 1 \
          -timeout 3s -max_retrans 2 > /dev/null 2>&1); then up=1; break; fi
    sleep 0.5
  done
  [ $up = 1 ] || { echo "$T: server did not start, see $D/server.log" >&2; stop_server; return 1; }
  (cd "$D" && timeout -k 3 $((tmo + 15)) sipp -sf "$SC/call_uas.xml" $SIPP_COMMON -p 25070 -m $N \
      -timeout $((tmo + 10))s -trace_stat -stf uas_stat.csv -fd 5 > uas.out 2>&1) &
  local UASPID=$!
  sleep 0.5
  echo "$(server_cpu)" > "$D/cpu0"
  (cd "$D" && TIMEFORMAT='%R %U %S'; { time timeout -k 3 $((tmo + 5)) sipp 127.0.0.1:25060 -sf "$SC/call_uac.xml" \
      -inf "$SHARED/data/calls.csv" $SIPP_COMMON -p 25071 -m $N -r $RATE -l $((RATE * 10 + 100)) -d $CALL_PAUSE_MS \
      -timeout ${tmo}s -trace_stat -stf uac_stat.csv -fd 5 -trace_rtt -rtt_freq 100 -trace_err \
      -error_file uac_errors.log > uac.out 2>&1 ; } 2> uac.time )
  wait "$UASPID" 2>/dev/null
  sleep 1
  echo "$(cat "$D/cpu0") $(server_cpu)" > "$D/cpu.txt"
  stop_server
  local line
  line=$(python3 "$SHARED/lib/summarize.py" "$D" "$RATE" "$N" 3)
  echo "$T $line"
}

for t in $TARGETS; do
  for p in 25060 25070 25071; do
    ss -Hlun "sport = :$p" | grep -q . && { echo "port $p busy" >&2; exit 3; }
  done
  run_one "$t"
done | tee "$OUT/results.txt"
echo "output in $OUT"
