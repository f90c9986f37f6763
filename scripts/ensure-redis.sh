#!/usr/bin/env bash
# Print a Redis URL that answers: $CELERY_BROKER_URL or the local server if it answers PING,
# otherwise a throwaway Redis of our own under var/redis (Debian's redis-server package),
# on a free loopback port (REDIS_PORT, default 63790), without persistence.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# answers URL: the Redis server at URL replies to PING.
answers() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null)" = "PONG" ]
    elif [ -x .venv/bin/python ]; then
        timeout 10 .venv/bin/python - "$1" >/dev/null 2>&1 <<'EOF'
import sys

import redis

client = redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3, socket_timeout=3)
sys.exit(0 if client.ping() else 1)
EOF
    else
        return 1
    fi
}

# port_taken PORT: something accepts connections on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"
if answers "$url"; then
    echo "$url"
    exit 0
fi
if [ -n "${CELERY_BROKER_URL:-}" ]; then
    log "CELERY_BROKER_URL is set but does not answer; starting a private Redis instead"
fi

dir="$PWD/var/redis"
mkdir -p "$dir"
# Ours from an earlier run, still up?
if [ -f "$dir/port" ] && [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    url="redis://127.0.0.1:$(cat "$dir/port")/0"
    if answers "$url"; then
        echo "$url"
        exit 0
    fi
fi

command -v redis-server >/dev/null 2>&1 || apt_install redis-server
port="${REDIS_PORT:-63790}"
for _ in $(seq 1 50); do
    port_taken "$port" || break
    port=$((port + 1))
done
if port_taken "$port"; then
    log "no free loopback port for Redis from ${REDIS_PORT:-63790} on"
    exit 1
fi

log "starting a private Redis on 127.0.0.1:$port ($dir)"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
echo "$port" >"$dir/port"
url="redis://127.0.0.1:$port/0"
for _ in $(seq 1 100); do
    if answers "$url"; then
        echo "$url"
        exit 0
    fi
    sleep 0.1
done
log "the private Redis does not answer; its log:"
tail -n 20 "$dir/redis.log" >&2 || true
exit 1
