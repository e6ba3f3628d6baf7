# shellcheck shell=bash
# scripts/bench-synapse.sh: W5, the agents' sends and the humans' messages through a real
# Synapse on loopback; scripts/bench sources this file (it uses the bench's helpers and
# variables: log, fail, row, run_wrk, OUT, BIN ...).
#
# Synapse (installed by scripts/install-synapse.sh into target/synapse-venv, with
# psycopg2-binary, on a fresh PostgreSQL database of the local server (BENCH_PG_URL, as the
# PostgreSQL workloads), rate limits out of the way, log level WARNING) listens on BENCH_SYNAPSE_PORT (28452); one
# daemon on its own store is its appservice. W5_AGENTS agents each get a room of their own
# (provisioned through the bridge API, a human invited and joined). Then:
#
#   sends    the same PUT .../send/m.room.message as the same agents' users, alternately
#            straight at Synapse on the Client-Server API (appservice token, ?user_id=)
#            and through the daemon's POST /bridge/v1/messages, alternating (8 rounds of a
#            quarter of --duration each, 4 in the smoke);
#            Synapse is the limit here: what the daemon adds is the share of time per send
#            over the direct calls'
#   inbound  the human sends into the agents' rooms straight at Synapse, which pushes the
#            messages to the daemon in transactions; the time until the last of them is in
#            its agent's inbox, over the time Synapse took to accept them all

SYN_PORT=${BENCH_SYNAPSE_PORT:-28452}
SYN_URL="http://127.0.0.1:$SYN_PORT"
W5_AGENTS=64
[ "$MODE" = full ] || W5_AGENTS=4
SYNAPSE_PID=""

# shellcheck source=scripts/synapse-config.sh
. "$ROOT/scripts/synapse-config.sh"

synapse_cleanup() {
    stop_pid "$SYNAPSE_PID"
    SYNAPSE_PID=""
    [ -z "${W5_PG_DB:-}" ] || pg_drop "$W5_PG_DB"
    W5_PG_DB=""
}

# Synapse and the daemon on fresh state in $1, agents and rooms set up; sets W5_ROOMS and
# W5_HUMAN_TOKEN. Returns non-zero (after fail) when something did not start.
synapse_start() { # dir
    local dir=$1 py secret
    port_free "$SYN_PORT" || { fail "W5: port $SYN_PORT is in use (set BENCH_SYNAPSE_PORT)"; return 1; }
    log "W5: installing Synapse when missing (scripts/install-synapse.sh)"
    bash "$ROOT/scripts/install-synapse.sh" >"$OUT/synapse-install.log" 2>&1 ||
        { fail "W5: could not install Synapse (see $OUT/synapse-install.log)"; return 1; }
    py=${SYNAPSE_VENV:-$ROOT/target/synapse-venv}/bin/python
    # Synapse on PostgreSQL, as it runs in production (on SQLite it is several times slower).
    "$py" -c 'import psycopg2' 2>/dev/null || "$py" -m pip install -q psycopg2-binary >>"$OUT/synapse-install.log" 2>&1 ||
        { fail "W5: could not install psycopg2-binary into Synapse's venv"; return 1; }
    pg 'SELECT 1' >/dev/null || { fail "W5: no PostgreSQL answers at $PG_URL"; return 1; }
    pg_create "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    W5_PG_DB=$PG_DB
    PG_DB="" # the daemon's own store is SQLite (the default), not this database
    stop_daemon
    rm -rf "${dir:?}"
    mkdir -p "$dir/synapse"
    HS_URL=$SYN_URL write_config "$dir"
    "$BIN" registration --config "$dir/config.toml" >"$dir/registration.yaml" ||
        { fail "W5: mosaic-as registration failed"; return 1; }
    secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    SYNAPSE_PG_DB=$W5_PG_DB synapse_config "$dir/synapse" "$SYN_PORT" bench.local "$secret" "$dir/registration.yaml" \
        '{per_second: 1000000, burst_count: 1000000}' "${BENCH_SYNAPSE_LOG:-WARNING}"
    "$py" -m synapse.app.homeserver -c "$dir/synapse/homeserver.yaml" >"$dir/synapse/stdout.log" 2>&1 &
    SYNAPSE_PID=$!
    for _ in $(seq 600); do
        curl -sf -o /dev/null "$SYN_URL/_matrix/client/versions" && break
        kill -0 "$SYNAPSE_PID" 2>/dev/null || break
        sleep 0.1
    done
    curl -sf -o /dev/null "$SYN_URL/_matrix/client/versions" ||
        { fail "W5: Synapse did not start (see $dir/synapse/)"; return 1; }
    start_daemon "$dir"
    python3 "$ROOT/benches/synapse.py" setup --hs "$SYN_URL" --secret "$secret" --as-url "$AS_URL" \
        --bridge-token "$BRIDGE_TOKEN" --agents "$W5_AGENTS" >"$dir/setup.txt" 2>&1 ||
        { fail "W5: set-up failed (see $dir/setup.txt)"; return 1; }
    parse_bench "$dir/setup.txt" S_
    W5_ROOMS=$S_rooms
    W5_HUMAN_TOKEN=$S_human_token
}

# The lowest and highest of slash-separated figures: "a–b".
span() { tr '/' '\n' <<<"$1" | grep . | sort -g | sed -n '1p;$p' | awk 'NR == 1 {a = $1} END {print a "–" $1}'; }

# wrk straight at Synapse as the agents' users, and at the daemon as the agents.
w5_direct() {
    TOKEN="$MOSAIC_AS_TOKEN" USER_PREFIX=agent-a SERVER=bench.local ROOM_IDS="$W5_ROOMS" run_wrk "$@"
}
w5_bridge() { ROOM_IDS="$W5_ROOMS" AGENTS="$W5_AGENTS" run_wrk "$@"; }

# The agents' sends: direct (d) and through the daemon (b), alternating.
w5_sends() { # dir
    local dir=$1 round d_req=0 d_us=0 b_req=0 b_us=0 errors=0 d_p50="" b_p50="" d_p99="" b_p99=""
    local ticks0 b_ticks=0
    # No more connections than rooms: the daemon sends one message at a time per room (in
    # order), so more would only queue sends behind each other, and a queue left at the end
    # of a round would still be draining in the next.
    local conns=$((CONNS < W5_AGENTS ? CONNS : W5_AGENTS))
    local slice=$(((DURATION + 3) / 4)) rounds=4
    [ "$slice" -ge 2 ] || slice=2
    [ "$MODE" = full ] && rounds=8
    w5_direct "$dir/warmup-direct.txt" "$WARMUP" "$conns" "$THREADS" matrix_send.lua "$SYN_URL" -- "warm-$(nonce)"
    w5_bridge "$dir/warmup-bridge.txt" "$WARMUP" "$conns" "$THREADS" send.lua "$AS_URL"
    for round in $(seq "$rounds"); do
        w5_direct "$dir/direct$round.txt" "$slice" "$conns" "$THREADS" matrix_send.lua "$SYN_URL" -- "d$round-$(nonce)"
        d_req=$((d_req + W_requests)); d_us=$((d_us + W_duration_us)); errors=$((errors + $(wrk_errors)))
        d_p50+="$(ms "$W_p50_us")/"; d_p99+="$(ms "$W_p99_us")/"
        ticks0=$(cpu_ticks "$DAEMON_PID")
        w5_bridge "$dir/bridge$round.txt" "$slice" "$conns" "$THREADS" send.lua "$AS_URL"
        b_ticks=$((b_ticks + $(cpu_ticks "$DAEMON_PID") - ticks0))
        b_req=$((b_req + W_requests)); b_us=$((b_us + W_duration_us)); errors=$((errors + $(wrk_errors)))
        b_p50+="$(ms "$W_p50_us")/"; b_p99+="$(ms "$W_p99_us")/"
    done
    local d_rate b_rate
    d_rate=$(calc "$d_req / ($d_us / 1000000)")
    b_rate=$(calc "$b_req / ($b_us / 1000000)")
    row "W5 sends through Synapse" "$(fmt "$b_rate") req/s" "$(span "$b_p50") ms" "$(span "$b_p99") ms" "$errors" \
        "$W5_AGENTS agents, a room each, $conns connections, through the daemon; the same sends straight at Synapse as the same users (appservice token, ?user_id=), alternating, $rounds rounds of $slice s each: $(fmt "$d_rate") req/s, p50 $(span "$d_p50") ms, p99 $(span "$d_p99") ms (ranges over the rounds); **time per send through the daemon: $(printf '%.1f' "$(calc "100 * $d_rate / $b_rate")") % of Synapse's own** (target ≤ 110 %)$(cpu_note "$b_ticks" "$b_req" "$b_us" send)"
    [ "$errors" = 0 ] || fail "W5 sends: $errors errors"
}

# The human's messages, pushed by Synapse to the daemon: accepted by Synapse in T, all in
# the agents' inboxes after T + lag.
w5_inbound() { # dir
    local dir=$1 before t0 t1 ok
    python3 "$ROOT/benches/synapse.py" settle --as-url "$AS_URL" >"$dir/settle.txt" 2>&1 ||
        fail "W5: waiting for Synapse's pushes to settle failed"
    before=$(metric mosaic_as_inbox_deliveries_total)
    t0=$(date +%s.%N)
    TOKEN="$W5_HUMAN_TOKEN" ROOM_IDS="$W5_ROOMS" run_wrk "$dir/inbound.txt" "$DURATION" "$CONNS" "$THREADS" \
        matrix_send.lua "$SYN_URL" -- "in-$(nonce)"
    t1=$(date +%s.%N)
    ok=$((W_requests - W_status))
    python3 "$ROOT/benches/synapse.py" deliveries --as-url "$AS_URL" --target "$((before + ok))" \
        >"$dir/deliveries.txt" 2>&1 || fail "W5: waiting for the deliveries failed"
    parse_bench "$dir/deliveries.txt" D_
    local took lag
    took=$(calc "$t1 - $t0")
    lag=$(calc "${D_at:-$t1} - $t1")
    row "W5 inbound through Synapse" "$(fmt "$(calc "$ok / $took")") msg/s" "$(ms "$W_p50_us") ms" "$(ms "$W_p99_us") ms" \
        "$(wrk_errors)" "a human's messages into the $W5_AGENTS agents' rooms, straight at Synapse (its send latencies), pushed to the daemon: $(fmt "$ok") accepted in $(printf '%.2f' "$took") s, the last in its agent's inbox $(printf '%.0f' "$(calc "1000 * $lag")") ms after the last was accepted: **all delivered in $(printf '%.1f' "$(calc "100 * ($took + $lag) / $took")") % of Synapse's own time** (target ≤ 110 %); $(fmt "$((D_value - before))") inbox deliveries"
    [ "${D_reached:-0}" = 1 ] || fail "W5 inbound: only $((D_value - before)) of $ok messages reached the inboxes"
    [ "$(wrk_errors)" = 0 ] || fail "W5 inbound: $(wrk_errors) errors"
}

bench_synapse() {
    local dir="$OUT/W5"
    synapse_start "$dir" || { synapse_cleanup; return 0; }
    w5_sends "$dir"
    w5_inbound "$dir"
    stop_daemon
    synapse_cleanup
}
