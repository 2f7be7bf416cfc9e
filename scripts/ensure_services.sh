#!/usr/bin/env bash
# Make sure Postgres and Redis answer on this machine; start the local ones if they are down.
set -uo pipefail
pg_host=127.0.0.1; pg_port=5432; redis_host=127.0.0.1; redis_port=6379

pg_up() { pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; }
redis_up() { [ "$(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 20); do pg_up && break; sleep 0.5; done
fi
if ! redis_up && command -v redis-server >/dev/null; then
  echo "starting Redis..."
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null || true
  for _ in $(seq 20); do redis_up && break; sleep 0.5; done
fi

ok=0
pg_up || { echo "PostgreSQL is not answering on $pg_host:$pg_port and could not be started (install it, or set DATABASE_URL to a running server)." >&2; ok=1; }
redis_up || { echo "Redis is not answering on $redis_host:$redis_port and could not be started (install redis-server, or set REDIS_URL)." >&2; ok=1; }
exit $ok
