# shellcheck shell=bash
# scripts/synapse-config.sh: a Synapse configuration for a machine without a network
# (loopback listener, SQLite, no federation or key servers, no presence, uncached /sync,
# registration only with the shared secret), sourced by scripts/run-local and scripts/bench.
#
#   synapse_config DIR PORT SERVER_NAME SHARED_SECRET REGISTRATION RATE [LOG_LEVEL]
#
# writes DIR/log.yaml and DIR/homeserver.yaml (mode 600: it holds the shared secret); the
# database, signing key, media and log go to DIR. REGISTRATION is the appservice's
# registration file; RATE the setting of every rate limiter, e.g.
# "{per_second: 1000, burst_count: 10000}"; LOG_LEVEL defaults to INFO. With SYNAPSE_PG_DB
# set, Synapse keeps its data in that PostgreSQL database (user postgres on 127.0.0.1:5432,
# UTF8 with C collation, psycopg2 in Synapse's venv) instead of DIR/homeserver.db.

synapse_config() {
    local dir=$1 port=$2 server_name=$3 secret=$4 registration=$5 rate=$6 level=${7:-INFO}
    mkdir -p "$dir/media"
    cat >"$dir/log.yaml" <<EOF
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: '$dir/homeserver.log'
    encoding: utf8
root:
  level: $level
  handlers: [file]
disable_existing_loggers: false
EOF
    (umask 077 && cat >"$dir/homeserver.yaml") <<EOF
server_name: '$server_name'
public_baseurl: 'http://127.0.0.1:$port/'
pid_file: '$dir/homeserver.pid'
signing_key_path: '$dir/signing.key'
log_config: '$dir/log.yaml'
media_store_path: '$dir/media'
$(synapse_database "$dir")
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
serve_server_wellknown: false
enable_registration: false
registration_shared_secret: '$secret'
presence:
  enabled: false
caches:
  sync_response_cache_duration: 0
app_service_config_files: ['$registration']
rc_message: $rate
rc_registration: $rate
rc_login: {address: $rate, account: $rate, failed_attempts: $rate}
rc_joins: {local: $rate, remote: $rate}
rc_joins_per_room: $rate
rc_invites: {per_room: $rate, per_user: $rate, per_issuer: $rate}
rc_room_creation: $rate
rc_3pid_validation: $rate
rc_admin_redaction: $rate
EOF
}

synapse_database() { # dir
    if [ -n "${SYNAPSE_PG_DB:-}" ]; then
        printf 'database:\n  name: psycopg2\n  args:\n    user: postgres\n    host: 127.0.0.1\n    port: 5432\n    database: %s\n    cp_min: 5\n    cp_max: 10' "$SYNAPSE_PG_DB"
    else
        printf "database:\n  name: sqlite3\n  args:\n    database: '%s/homeserver.db'" "$1"
    fi
}
