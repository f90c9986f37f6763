#!/usr/bin/env bash
# Print a PostgreSQL URL that answers: $DATABASE_URL or the local server if reachable,
# otherwise a throwaway cluster of our own under var/pg (Debian's postgresql package).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/itportal}"
if command -v pg_isready >/dev/null 2>&1 && timeout 5 pg_isready -q -d "$url"; then
    echo "$url"
    exit 0
fi
if [ -n "${DATABASE_URL:-}" ]; then
    log "DATABASE_URL is set but does not answer; starting a private cluster instead"
fi

port="${PG_PORT:-54329}"
dir="$PWD/var/pg"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
    apt_install postgresql
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "creating a throwaway PostgreSQL cluster in $dir"
    as_service_user "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
fi
if ! as_service_user "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_service_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$port/itportal"
