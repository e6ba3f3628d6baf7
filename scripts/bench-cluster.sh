# shellcheck shell=bash
# scripts/bench-cluster.sh: the PostgreSQL and replica workloads of scripts/bench, which
# sources this file (it uses the bench's helpers and variables: log, fail, row, OUT, BIN ...).
#
#   W1PG      W1 on PostgreSQL, one replica, store.sync = "full", with its rate as a share
#             of W1 on SQLite in the same run (selecting W1PG runs W1 too)
#   W2PG      W2 on PostgreSQL, one replica, with its rate as a share of W2 on SQLite
#   W1R2      W1 into two replicas on one PostgreSQL database behind a round-robin proxy
#   W2R2      W2 through the proxy: half of the sends reach a replica that does not own
#             the agent and are forwarded to the owner
#   TAKEOVER  an agent owned by replica 2, which is killed (SIGKILL); sends as that agent
#             through the proxy until one is answered 200: kill → first 200
#
# Every PostgreSQL workload runs on a database of its own, mosaic_bench_<random>, created on
# the server at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432, a role that may
# create databases; no password in it: PGPASSWORD or ~/.pgpass) and dropped WITH (FORCE)
# when the workload ends, and on exit whatever happened. The two replicas listen on
# BENCH_R1_PORT (28450) and BENCH_R2_PORT (28451); the proxy, nginx with
# benches/standin/proxy.conf, on BENCH_AS_PORT, where the single daemon of the other
# workloads listens, so wrk and the driver call the same URL in every workload.

PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
R1_PORT=${BENCH_R1_PORT:-28450}
R2_PORT=${BENCH_R2_PORT:-28451}
R_URLS=("http://127.0.0.1:$R1_PORT" "http://127.0.0.1:$R2_PORT")
# ha.takeover_s of the TAKEOVER replicas: the default (10) in a full run, the least allowed
# (3) in the smoke so that it stays short.
TAKEOVER_S=${BENCH_TAKEOVER_S:-10}
[ "$MODE" = full ] || TAKEOVER_S=${BENCH_TAKEOVER_S:-3}
CLUSTER_WORKLOADS=(W1PG W1R2 W2PG W2R2 TAKEOVER)

BACKEND=sqlite # the store of the workload being run: sqlite, pg (one daemon) or pg2
PG_DB=""       # the database of the workload being run
PG_DBS=()      # databases created and not dropped yet
REPLICA_PIDS=()
PROXY_PID=""
METRIC_URLS=""  # where metric() reads (the replicas', not the proxy's); empty: AS_URL
W1PG_RATE=""

# ------------------------------------------------------------------ PostgreSQL

pg() { # query [database]
    PGOPTIONS=--client-min-messages=warning psql "$PG_URL/${2:-postgres}" -v ON_ERROR_STOP=1 -qAtX -c "$1"
}

# Called once before the workloads when any of them is selected.
cluster_setup() {
    if ! command -v psql >/dev/null; then
        log "installing postgresql-client (Debian package)"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql-client >/dev/null
    fi
    pg 'SELECT 1' >/dev/null || {
        echo "bench: no PostgreSQL answers at $PG_URL (set BENCH_PG_URL)" >&2
        exit 1
    }
    local p
    for p in "$R1_PORT" "$R2_PORT"; do
        port_free "$p" || { echo "bench: port $p is in use (set BENCH_R1_PORT / BENCH_R2_PORT)" >&2; exit 1; }
    done
}

cluster_selected() { any_selected "${CLUSTER_WORKLOADS[@]}"; }

pg_create() { # [options of CREATE DATABASE]; sets PG_DB
    PG_DB="mosaic_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    PG_DBS+=("$PG_DB")
    pg "CREATE DATABASE $PG_DB ${1:-}"
}

pg_drop() { # database
    local keep=() d
    pg "DROP DATABASE IF EXISTS $1 WITH (FORCE)" || log "could not drop database $1"
    for d in "${PG_DBS[@]}"; do [ "$d" = "$1" ] || keep+=("$d"); done
    PG_DBS=("${keep[@]}")
}

# ------------------------------------------------------------------ daemons

write_pg_config() { # dir listen-port [advertise-url takeover-s]
    cat >"$1/config.toml" <<EOF
[homeserver]
url = "$HS_URL"
server_name = "bench.local"
[appservice]
listen = "127.0.0.1:$2"
url = "$AS_URL"
[store]
url = "$PG_URL/$PG_DB"
sync = "${STORE_SYNC:-full}"
[limits]
hs_max_in_flight = 512
agent_queue = 256
[log]
format = "text"
EOF
    [ -z "${3:-}" ] || printf '[ha]\nadvertise_url = "%s"\ntakeover_s = %s\n' "$3" "$4" >>"$1/config.toml"
}

# Replica i (0 or 1) of the pair, on its own port; waits for its /ready.
start_replica() { # dir i
    local dir=$1 url=${R_URLS[$2]} pid code
    mkdir -p "$dir"
    env -u MOSAIC_ADVERTISE_URL RUST_LOG=warn "$BIN" serve --config "$dir/config.toml" >>"$dir/daemon.log" 2>&1 &
    pid=$!
    REPLICA_PIDS[$2]=$pid
    for _ in $(seq 6000); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url/ready" || true)
        [ "$code" = 200 ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    echo "bench: replica $(($2 + 1)) did not become ready (see $dir/daemon.log):" >&2
    tail -5 "$dir/daemon.log" >&2
    exit 1
}

start_proxy() {
    local dir="$OUT/proxy"
    rm -rf "$dir"
    mkdir -p "$dir"/{body,proxy,fastcgi,uwsgi,scgi}
    sed -e "s#@PREFIX@#$dir#g" -e "s#@LISTEN@#127.0.0.1:$AS_PORT#g" \
        -e "s#@REPLICA1@#127.0.0.1:$R1_PORT#g" -e "s#@REPLICA2@#127.0.0.1:$R2_PORT#g" \
        "$ROOT/benches/standin/proxy.conf" >"$dir/nginx.conf"
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -t -q
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    PROXY_PID=$!
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$AS_URL/ready" || true)" = 200 ] && return 0
        sleep 0.05
    done
    echo "bench: the proxy did not start (see $dir/error.log)" >&2
    exit 1
}

stop_pid() { # pid
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_pair() {
    local pid
    for pid in "${REPLICA_PIDS[@]}"; do stop_pid "$pid"; done
    REPLICA_PIDS=()
    stop_pid "$PROXY_PID"
    PROXY_PID=""
    METRIC_URLS=""
}

# On exit (scripts/bench's cleanup): what is still running, then every database left.
cluster_cleanup() {
    stop_pair
    local d
    for d in "${PG_DBS[@]}"; do pg_drop "$d"; done
}

# ------------------------------------------------------------------ the store of a workload

# The bench's workloads start, stop, count and release their store through these; BACKEND
# says which: sqlite (the daemon of scripts/bench on its file), pg (that daemon on a fresh
# PostgreSQL database) or pg2 (two replicas on a fresh database behind the proxy).
store_start() { # name
    local dir="$OUT/$1"
    case $BACKEND in
        sqlite) fresh_daemon "$1"; return ;;
    esac
    stop_daemon
    stop_pair
    rm -rf "${dir:?}"
    mkdir -p "$dir"
    pg_create
    if [ "$BACKEND" = pg ]; then
        write_pg_config "$dir" "$AS_PORT"
        start_daemon "$dir"
        return
    fi
    local i
    for i in 0 1; do
        mkdir -p "$dir/r$((i + 1))"
        write_pg_config "$dir/r$((i + 1))" "${R_URLS[$i]##*:}" "${R_URLS[$i]}" "${HA_TAKEOVER_S:-10}"
        start_replica "$dir/r$((i + 1))" "$i"
    done
    start_proxy
    METRIC_URLS="${R_URLS[*]}"
}

store_stop() {
    case $BACKEND in
        sqlite | pg) stop_daemon ;;
        pg2) stop_pair ;;
    esac
}

store_count() { # name txns|inbox (after store_stop)
    local q
    if [ "$BACKEND" = sqlite ]; then
        case $2 in
            txns) q="SELECT COUNT(*) FROM transactions WHERE txn_id LIKE 'run-%'" ;;
            inbox) q="SELECT COUNT(*) FROM inbox" ;;
        esac
        sql "$OUT/$1/bench.db" "$q"
        return
    fi
    case $2 in
        txns) q="SELECT count(*) FROM transactions WHERE convert_from(txn_id, 'UTF8') LIKE 'run-%'" ;;
        inbox) q="SELECT count(*) FROM inbox" ;;
    esac
    pg "$q" "$PG_DB"
}

store_release() {
    [ "$BACKEND" = sqlite ] || [ -z "$PG_DB" ] || pg_drop "$PG_DB"
    PG_DB=""
}

pct() { printf '%.1f' "$(calc "100 * $1 / $2")"; } # part whole

# The notes a row gets for its store, in BACKEND_NOTES (called before store_stop: reads the
# replicas' metrics).
backend_notes() { # name rate
    BACKEND_NOTES=""
    case $1 in
        W1PG)
            W1PG_RATE=$2
            BACKEND_NOTES="; PostgreSQL, one daemon"
            [ -z "$W1_RATE" ] || BACKEND_NOTES+="; **$(pct "$2" "$W1_RATE") % of W1** (SQLite) in this run (target ≥ 60 %)"
            ;;
        W2PG)
            BACKEND_NOTES="; PostgreSQL, one daemon"
            [ -z "$W2_RATE" ] || BACKEND_NOTES+="; **$(pct "$2" "$W2_RATE") % of W2** (SQLite) in this run (target ≥ 60 %)"
            ;;
        W1R2)
            BACKEND_NOTES="; 2 replicas on one PostgreSQL database behind nginx (round-robin per request)"
            [ -z "$W1PG_RATE" ] || BACKEND_NOTES+="; $(pct "$2" "$W1PG_RATE") % of W1PG"
            [ -z "$W1_RATE" ] || BACKEND_NOTES+=", $(pct "$2" "$W1_RATE") % of W1 in this run"
            ;;
        W2R2)
            # Forwarded calls since the replicas started: of the warm-up's sends and the run's.
            local forwarded
            forwarded=$(metric mosaic_as_forwarded_requests_total)
            parse_bench "$OUT/$1/warmup.txt" WU_
            BACKEND_NOTES="; 2 replicas on one PostgreSQL database behind nginx (round-robin per request): $(pct "$forwarded" "$((W_requests + WU_requests))") % of the sends forwarded to the owner"
            [ -z "$W2_RATE" ] || BACKEND_NOTES+="; $(pct "$2" "$W2_RATE") % of W2 (one daemon, SQLite) in this run"
            ;;
    esac
}

# ------------------------------------------------------------------ workloads

# TAKEOVER: an agent owned by replica 2; replica 2 killed (SIGKILL); sends as the agent
# through the proxy, every 50 ms, the same txn_id each time as a client retrying would, until
# one is answered 200 (by replica 1, which took the agent over once replica 2's lease
# expired). Reports kill → first 200, beside kill → lease expiry as the database had it.
bench_takeover() {
    local code t0 elapsed left owner epoch statuses="" deadline errors=0 notes
    local BACKEND=pg2 HA_TAKEOVER_S=$TAKEOVER_S
    store_start TAKEOVER
    send_as_t0() { # url txn-id: prints the status
        curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$1/bridge/v1/messages" \
            -H "Authorization: Bearer $BRIDGE_TOKEN" -H 'Content-Type: application/json' \
            -d "{\"room_id\":\"!takeover\",\"agent\":\"t0\",\"body\":\"message $2\",\"txn_id\":\"$2\"}" || true
    }
    # Its first call reaches replica 2 directly, which claims the agent.
    code=$(send_as_t0 "${R_URLS[1]}" first)
    owner=$(pg "SELECT rtrim(r.url, '/') FROM agent_owners o JOIN replicas r ON r.id = o.replica WHERE o.slug = 't0'" "$PG_DB")
    if [ "$code" != 200 ] || [ "$owner" != "${R_URLS[1]}" ]; then
        fail "TAKEOVER: the first send answered $code, the agent's owner is '$owner' (not replica 2)"
        store_stop
        store_release
        return
    fi
    sleep 1
    t0=$(date +%s.%N)
    kill -KILL "${REPLICA_PIDS[1]}"
    left=$(pg "SELECT extract(epoch FROM expires_at - now()) FROM replicas WHERE rtrim(url, '/') = '${R_URLS[1]}'" "$PG_DB")
    wait "${REPLICA_PIDS[1]}" 2>/dev/null || true
    REPLICA_PIDS[1]=""
    deadline=$(calc "$t0 + $TAKEOVER_S + 15")
    while :; do
        code=$(send_as_t0 "$AS_URL" after-kill)
        statuses+=" $code"
        [ "$code" = 200 ] && break
        if awk "BEGIN { exit !($(date +%s.%N) > $deadline) }"; then
            errors=1
            break
        fi
        sleep 0.05
    done
    elapsed=$(calc "$(date +%s.%N) - $t0")
    epoch=$(pg "SELECT rtrim(r.url, '/') || ' epoch ' || o.epoch FROM agent_owners o JOIN replicas r ON r.id = o.replica WHERE o.slug = 't0'" "$PG_DB")
    statuses=$(tr ' ' '\n' <<<"$statuses" | grep . | sort | uniq -c | awk '{printf "%s%s × %s", (NR > 1 ? ", " : ""), $1, $2}')
    notes="ha.takeover_s = $TAKEOVER_S; replica 2's lease had $(printf '%.2f' "$left") s left at the kill (renewed every takeover_s / 3);"
    notes+=" sends as its agent through the proxy every 50 ms with one txn_id, answers: $statuses; owner after: $epoch"
    row "TAKEOVER kill -9 → first 200" "$(printf '%.2f' "$elapsed") s" "–" "–" "$errors" "$notes"
    [ "$errors" = 0 ] || fail "TAKEOVER: no send answered 200 within $TAKEOVER_S + 15 s of the kill"
    [ "$epoch" = "${R_URLS[0]} epoch 2" ] || fail "TAKEOVER: the agent's owner after is $epoch, not replica 1 at epoch 2"
    store_stop
    store_release
}

# ------------------------------------------------------------------ --perf on PostgreSQL

# With --perf, on a PostgreSQL workload: what the workload's database sessions were doing
# (pg_stat_activity every 10 ms for the measured run; sessions at rest not counted), as
# shares of the samples, in <W>/pg-waits.txt. "idle in transaction" is a session waiting
# for the daemon's next statement, "IO:WALSync" a COMMIT waiting for its WAL flush,
# "Lock:advisory" a group commit waiting for another replica's.
pg_waits_start() { # dir
    [ "$PERF" = 1 ] && [ "$BACKEND" != sqlite ] || return 0
    PGOPTIONS=--client-min-messages=warning psql "$PG_URL/$PG_DB" -qAtX -v ON_ERROR_STOP=1 >"$1/pg-waits.txt" 2>&1 <<EOF2 &
CREATE TEMP TABLE s (what text);
CREATE TEMP TABLE n (samples int);
DO \$\$ DECLARE k int := 0; BEGIN
    WHILE clock_timestamp() < now() + interval '$DURATION s' LOOP
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO s SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, 'on CPU')
            FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle';
        k := k + 1;
        PERFORM pg_sleep(0.01);
    END LOOP;
    INSERT INTO n VALUES (k);
END \$\$;
SELECT format('%6s %% of %s samples  %s', round(100.0 * count(*) / n.samples, 1), n.samples, what)
    FROM s, n GROUP BY what, n.samples ORDER BY count(*) DESC;
EOF2
    PG_WAITS_PID=$!
}

pg_waits_stop() { # dir
    [ -n "${PG_WAITS_PID:-}" ] || return 0
    wait "$PG_WAITS_PID" || true
    PG_WAITS_PID=""
    log "PostgreSQL sessions' states in ${1#"$ROOT"/}/pg-waits.txt"
}
