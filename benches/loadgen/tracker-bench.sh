#!/bin/bash
# Tracker benchmarks behind BENCHMARKS.md ("Tracker"): segswarm-tracker against aquatic_ws, on
# loopback only, each run against a freshly started tracker.
#
#   benches/loadgen/tracker-bench.sh setup        # self-signed cert + configs in $OUT
#   benches/loadgen/tracker-bench.sh loadgen      # segswarm-loadgen (ws://) vs both, C = 1,000 and 10,000
#   benches/loadgen/tracker-bench.sh tester       # aquatic_ws_load_test (wss://) vs both
#       (TESTER_CONNS="1000 10000", TESTER_TRACKERS="seg aq", TESTER_DURATION=60, TESTER_TIMEOUT=300
#       override the runs;
#       segswarm's /metrics at the end of each run is saved as results/lt-seg-cC.metrics)
#   benches/loadgen/tracker-bench.sh rounds       # paired tester rounds, both orders (TESTER_ROUNDS=3 each)
#   benches/loadgen/tracker-bench.sh churn        # 10 minutes of churn against segswarm-tracker
#   benches/loadgen/tracker-bench.sh memory       # RSS per connection at 10,000 (idle, and with offers)
#
# Needs: SEG_BIN (segswarm-tracker), LOADGEN_BIN (segswarm-loadgen), AQ_BIN and AQ_LT_BIN (aquatic_ws and
# aquatic_ws_load_test built from its repository with `cargo build --release -p aquatic_ws -p
# aquatic_ws_load_test`), openssl, a hard open-file limit of at least 20,000.
set -euo pipefail
OUT=${OUT:-/tmp/tracker-bench}
SEG_BIN=${SEG_BIN:-target/release/segswarm-tracker}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/segswarm-loadgen}
AQ_BIN=${AQ_BIN:-aquatic_ws}
AQ_LT_BIN=${AQ_LT_BIN:-aquatic_ws_load_test}
mkdir -p "$OUT/results"
ulimit -n 20000

seg_config() { # port [tls]
  echo "[server]"
  echo "listen = [\"127.0.0.1:$1\"]"
  echo "workers = 2"
  if [ "${2:-}" = tls ]; then
    echo "tls_cert_file = \"$OUT/cert.pem\""
    echo "tls_key_file = \"$OUT/key.pem\""
  fi
  cat <<'EOF'

[protocol]
# aquatic_ws keeps every delivered offer answerable for its whole TTL; do the same, since under
# load an answer can trail more than 20 newer offers to the same peer.
max_pending_offers_per_peer = 1000

[limits]
# Every load-generator connection comes from 127.0.0.1, and aquatic_ws_load_test sends as fast as
# it can and announces into a different swarm each time.
max_connections = 200000
max_connections_per_ip = 200000
max_announces_per_sec = 100000
announce_burst = 100000
max_swarms_per_connection = 100000
max_peers_per_swarm = 100000
EOF
}

setup() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$OUT/key.pem" -out "$OUT/cert.pem" -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  seg_config 8000 > "$OUT/segswarm-plain.toml"
  seg_config 8443 tls > "$OUT/segswarm-tls.toml"
  # aquatic_ws: its printed defaults, with 2 socket workers + 1 swarm worker (its advice for
  # 1-7 cores) or 1 + 1, loopback address, TLS on for the tester.
  "$AQ_BIN" -p > "$OUT/aquatic-default.toml"
  for v in plain tls 1x1; do
    local port=3000 tls=false workers=2
    [ $v = tls ] && port=3443 && tls=true
    [ $v = 1x1 ] && workers=1
    sed -e "s/^socket_workers = 1/socket_workers = $workers/" \
        -e "s/^address = \"0.0.0.0:3000\"/address = \"127.0.0.1:$port\"/" \
        -e "s/^enable_tls = false/enable_tls = $tls/" \
        -e "s#^tls_certificate_path = \"\"#tls_certificate_path = \"$OUT/cert.pem\"#" \
        -e "s#^tls_private_key_path = \"\"#tls_private_key_path = \"$OUT/key.pem\"#" \
        -e "s/^tcp_backlog = 1024/tcp_backlog = 4096/" \
        "$OUT/aquatic-default.toml" > "$OUT/aquatic-$v.toml"
  done
}

start() { # seg|aq|aq1x1 plain|tls -> pid
  case $1 in
    seg) "$SEG_BIN" --config "$OUT/segswarm-$2.toml" --log-level warn > "$OUT/results/tracker.log" 2>&1 & ;;
    aq) "$AQ_BIN" -c "$OUT/aquatic-$2.toml" > "$OUT/results/tracker.log" 2>&1 & ;;
    aq1x1) "$AQ_BIN" -c "$OUT/aquatic-1x1.toml" > "$OUT/results/tracker.log" 2>&1 & ;;
  esac
  echo $!
}
port() { case $1 in seg) echo 8000;; *) echo 3000;; esac; }
# The tracker is not this shell's child (started in a command substitution), so `wait` cannot be
# used: poll until it has exited (a graceful shutdown of 10,000 connections takes a few seconds).
stop() { # pid
  kill "$1" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

loadgen_run() { # tracker conns interval warmup tag
  local t=$1 c=$2 i=$3 w=$4 tag=$5 pid
  pid=$(start "$t" plain); sleep 2
  echo "== $t C=$c interval=${i}ms $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$LOADGEN_BIN" --url "ws://127.0.0.1:$(port "$t")" --connections "$c" --swarms 1000 --skew 1.0 \
    --offers-per-announce 5 --duration 60 --warmup "$w" --announce-interval-ms "$i" \
    --tracker-pid "$pid" --json > "$OUT/results/$t-c$c-$tag.json" 2> "$OUT/results/$t-c$c-$tag.err" || true
  stop "$pid"; sleep 2
}

loadgen() {
  for spec in "1000 1000 10 moderate" "10000 10000 20 moderate" "1000 200 10 heavy" "10000 2000 20 heavy"; do
    set -- $spec
    for t in seg aq aq1x1; do loadgen_run "$t" "$1" "$2" "$3" "$4"; done
  done
}

tester() {
  local duration=${TESTER_DURATION:-60}
  for c in ${TESTER_CONNS:-1000 10000}; do
    for t in ${TESTER_TRACKERS:-seg aq}; do
      local addr=127.0.0.1:8443 pid sampler
      [ $t = aq ] && addr=127.0.0.1:3443
      cat > "$OUT/results/lt-$t-c$c.toml" <<EOF
server_address = "$addr"
log_level = "warn"
num_workers = 2
num_connections_per_worker = $((c / 2))
connection_creation_interval_ms = 1
duration = $duration
measure_after_max_connections_reached = true
[torrents]
offers_per_request = 10
number_of_torrents = 10000
peer_seeder_probability = 0.25
weight_announce = 5
weight_scrape = 0
torrent_gamma_shape = 0.2
torrent_gamma_scale = 100.0
EOF
      pid=$(start $t tls); sleep 2
      echo "== tester $t C=$c $(date -u +%T)"
      ( while kill -0 "$pid" 2>/dev/null; do
          echo "$(date +%s) $(awk '/VmRSS/{print $2}' /proc/$pid/status) $(awk '{print $14+$15}' /proc/$pid/stat)"
          sleep 5
        done ) > "$OUT/results/lt-$t-c$c.rss" &
      sampler=$!
      # How long a new client waits for TCP + TLS while the tester floods (every 5 s).
      probe_url=https://$addr/health; [ $t = aq ] && probe_url=https://$addr/
      ( while kill -0 "$pid" 2>/dev/null; do
          echo "$(date +%s) $(curl -sk -o /dev/null --max-time 20 -w '%{time_connect} %{time_appconnect}' "$probe_url")"
          sleep 5
        done ) > "$OUT/results/lt-$t-c$c.handshake" &
      prober=$!
      timeout "${TESTER_TIMEOUT:-$((duration + 240))}" "$AQ_LT_BIN" -c "$OUT/results/lt-$t-c$c.toml" > "$OUT/results/lt-$t-c$c.out" 2>&1 || true
      if [ $t = seg ]; then
        # Relays dropped for slow readers, connections closed as too slow, and the rest.
        curl -sk --max-time 10 "https://$addr/metrics" > "$OUT/results/lt-$t-c$c.metrics" || true
        grep -E '^segswarm_(messages_dropped_total|errors_total\{kind="(queue_full|unknown_peer|unknown_offer)"\})' \
          "$OUT/results/lt-$t-c$c.metrics" || true
      fi
      stop "$pid"; kill "$sampler" "$prober" 2>/dev/null || true; sleep 2
    done
  done
}

# The tester's figure for one run: the mean of its 5-second "Responses in" windows after it
# reports "Max connections reached", or of all its windows when it never does; with the range of
# "Active connections" over those windows.
figure() { # lt-*.out
  awk 'function range(lo, hi) { return lo == "" ? "" : sprintf(", %d-%d connections open", lo, hi) }
       function keep(c) { if (lo == "" || c < lo) lo = c; if (c > hi) hi = c }
       /Max connections reached/ { after = 1; lo = ""; hi = 0; next }
       /^Responses in:/ { v = $3 + 0; if (after) { s += v; n++ } else { s0 += v; n0++ } }
       /^Active connections:/ { keep($3 + 0) }
       END { if (n) printf "%.0f%s\n", s / n, range(lo, hi);
             else if (n0) printf "%.0f (never had every connection open%s)\n", s0 / n0, range(lo, hi);
             else print "no figure" }' "$1"
}

# Paired rounds of `tester`, alternating which tracker runs first (TESTER_ROUNDS per order, 3 by
# default); each run's output is kept as results/round<R>-<tracker>-c<C>.out.
rounds() {
  local per_order=${TESTER_ROUNDS:-3} r order c t
  for r in $(seq 1 $((2 * per_order))); do
    order="seg aq"
    [ $((r % 2)) = 0 ] && order="aq seg"
    TESTER_TRACKERS="$order" tester
    for c in ${TESTER_CONNS:-1000 10000}; do
      for t in seg aq; do cp "$OUT/results/lt-$t-c$c.out" "$OUT/results/round$r-$t-c$c.out"; done
      echo "round $r ($order) C=$c: segswarm $(figure "$OUT/results/round$r-seg-c$c.out")" \
        "aquatic_ws $(figure "$OUT/results/round$r-aq-c$c.out")"
    done
  done
}

churn() {
  local pid
  pid=$(start seg plain); sleep 2
  "$LOADGEN_BIN" --mode churn --url ws://127.0.0.1:8000 --connections 2000 --swarms 1000 --skew 1.0 \
    --churn-rate 200 --churn-hold-ms 5000 --duration 600 --sample-interval 30 --swarm-rotate-secs 60 \
    --tracker-pid "$pid" > "$OUT/results/churn.out" 2> "$OUT/results/churn.err" || true
  curl -s http://127.0.0.1:8000/stats.json > "$OUT/results/churn-stats.json" || true
  stop "$pid"
  cat "$OUT/results/churn.out"
}

memory() {
  # The daemon links mimalloc (tracker/src/main.rs); earlier builds were compared with glibc,
  # jemalloc and mimalloc here through LD_PRELOAD (BENCHMARKS.md, table 2).
  for spec in "idle 0 0" "offers 5 10000"; do
    set -- $spec
    local pid
    pid=$(start seg plain)
    sleep 2
    "$LOADGEN_BIN" --url ws://127.0.0.1:8000 --connections 10000 --swarms 1000 --offers-per-announce "$2" \
      --announce-interval-ms "$3" --warmup 20 --duration 20 --tracker-pid "$pid" --json \
      > "$OUT/results/mem-$1.json" 2> "$OUT/results/mem-$1.err" || true
    stop "$pid"; sleep 1
    grep -o '"rss_bytes_per_connection": [0-9.]*' "$OUT/results/mem-$1.json" || true
  done
}

"${1:?usage: tracker-bench.sh setup|loadgen|tester|rounds|churn|memory}"
