#!/usr/bin/env bash
# Start the portal with demo data on PostgreSQL, on 127.0.0.1:$PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mkdir -p var
[ -f var/demo-secret ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > var/demo-secret
export SECRET_KEY="$(cat var/demo-secret)"
# The key that encrypts webhook secrets at rest, kept like the secret key.
[ -f var/demo-encryption-key ] || .venv/bin/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" > var/demo-encryption-key
export FIELD_ENCRYPTION_KEYS="$(cat var/demo-encryption-key)"
# PostgreSQL as in production (the controlling reports use its window and percentile
# functions): the local server if one answers, otherwise a private cluster under var/pg.
if [ -z "${DEMO_DATABASE_URL:-}" ]; then
    server="$(DATABASE_URL= scripts/ensure-postgres.sh)"
    DEMO_DATABASE_URL="${server%/*}/itportal_demo"
fi
export DATABASE_URL="$DEMO_DATABASE_URL"
.venv/bin/python scripts/create-database.py "$DATABASE_URL"
export DEBUG=false
# Demo data and the private slapd live in devtools/, installed only with DEV_TOOLS.
export DEV_TOOLS=true
export SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false SECURE_HSTS_SECONDS=0
# The same asynchronous path as production: a Celery worker and beat on Redis (the local
# one, or a private one under var/redis that scripts/ensure-redis.sh starts).
export CELERY_BROKER_URL="$(scripts/ensure-redis.sh)"
export CELERY_TASK_ALWAYS_EAGER=false
export EMAIL_URL="consolemail://"
# Webhooks to a receiver on this machine (docs/webhooks.md); production allows https only.
export WEBHOOKS_ALLOW_HTTP="${WEBHOOKS_ALLOW_HTTP:-true}"
export WEBHOOKS_ALLOWED_NETWORKS="${WEBHOOKS_ALLOWED_NETWORKS:-127.0.0.0/8,::1/128}"
PORT="${PORT:-8000}"
HOST="${HOST:-127.0.0.1}"
export PORTAL_BASE_URL="http://$HOST:$PORT"
export ALLOWED_HOSTS="localhost,127.0.0.1,$HOST"

# Single sign-on: a real OpenID provider (npm oidc-provider, scripts/oidc-provider/, as in the
# tests) on loopback port OIDC_PORT (9000), with a client for the portal and the demo people
# Anna Schmidt (account "anna") and Thomas Becker ("thomas"); its login page takes any
# password (oidc-provider's development login, demo only). It needs Node.js >= 20.18 and
# `make install`'s node_modules; without them (or with DEMO_SSO=false) the demo runs without.
OIDC_PORT="${OIDC_PORT:-9000}"
sso_issuer=
if [ "${DEMO_SSO:-true}" = true ]; then
    if ! command -v node >/dev/null 2>&1 || [ ! -d scripts/oidc-provider/node_modules/oidc-provider ]; then
        echo "demo: no single sign-on (node or scripts/oidc-provider/node_modules missing: make install)" >&2
    elif ! node scripts/oidc-provider/check-node.mjs; then
        echo "demo: no single sign-on (see README, \"Single sign-on in the demo\")" >&2
    else
        sso_issuer="http://127.0.0.1:$OIDC_PORT"
    fi
fi
if [ -n "$sso_issuer" ]; then
    [ -f var/demo-oidc-secret ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(32))" > var/demo-oidc-secret
    export OIDC_ENABLED=true OIDC_CLIENT_ID=itportal-demo OIDC_CLIENT_SECRET="$(cat var/demo-oidc-secret)"
    export OIDC_AUTHORIZATION_ENDPOINT="$sso_issuer/auth" OIDC_TOKEN_ENDPOINT="$sso_issuer/token" \
        OIDC_USERINFO_ENDPOINT="$sso_issuer/me" OIDC_JWKS_ENDPOINT="$sso_issuer/jwks" \
        OIDC_END_SESSION_ENDPOINT="$sso_issuer/session/end"
    # The portal as a confidential client (reached as 127.0.0.1, localhost or HOST) and
    # the people: scripts/oidc-provider/demo_config.py.
    sso_config="$(.venv/bin/python scripts/oidc-provider/demo_config.py --port "$OIDC_PORT" \
        --issuer "$sso_issuer" --client-id "$OIDC_CLIENT_ID" --client-secret "$OIDC_CLIENT_SECRET" \
        --portal "http://127.0.0.1:$PORT" --portal "http://localhost:$PORT" --portal "http://$HOST:$PORT")"
fi

# The environment of the demo's database, for manage.py in another shell:
# set -a; . var/demo.env; set +a; .venv/bin/python manage.py retention --dry-run
printf '%s\n' "DATABASE_URL=$DATABASE_URL" "SECRET_KEY=$SECRET_KEY" \
    "FIELD_ENCRYPTION_KEYS=$FIELD_ENCRYPTION_KEYS" "CELERY_BROKER_URL=$CELERY_BROKER_URL" \
    "DEBUG=false" "DEV_TOOLS=true" > var/demo.env
chmod 600 var/demo.env
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py seed_demo
# A year of past orders for the controlling pages (only into an empty history).
.venv/bin/python manage.py seed_history --if-empty
# Anna Schmidt's notebook of three years ago, for the retention run to anonymise (README).
.venv/bin/python manage.py seed_demo_retention

# The demo's directory: a private OpenLDAP slapd under var/slapd on DIRECTORY_PORT (3890).
.venv/bin/python manage.py directory_server start
.venv/bin/python manage.py directory_server seed
eval "$(.venv/bin/python manage.py directory_server env)"
# Link every employee to their directory entry: the directory login opens only linked accounts.
.venv/bin/python manage.py directory_sync
.venv/bin/python manage.py seed_demo_provisioning

# A worker per queue (as in production, see CELERY_TASK_ROUTES) and beat once, in the
# background, supervised as systemd's Restart=always would: whatever ends one (a crash, a
# kill) starts it again after two seconds. All are stopped with the portal.
pids=()
supervise() {  # supervise LOG COMMAND...
    local log=$1
    shift
    (
        child=
        trap '[ -n "$child" ] && kill "$child" 2>/dev/null; wait; exit 0' TERM INT
        while :; do
            "$@" >> "$log" 2>&1 &
            child=$!
            wait "$child" && status=0 || status=$?
            echo "$(date -Is) supervisor: exited with status $status, restarting in 2 s" >> "$log"
            sleep 2 & wait $!
        done
    ) &
    pids+=($!)
}
for queue in provisioning notifications webhooks reports; do
    supervise "var/celery-worker-$queue.log" \
        .venv/bin/celery -A itportal worker -Q "$queue" -n "$queue@%h" --concurrency 1 -l warning
done
supervise var/celery-beat.log .venv/bin/celery -A itportal beat -l warning -s var/celerybeat-schedule
if [ -n "$sso_issuer" ]; then
    supervise var/oidc-provider.log node scripts/oidc-provider/provider.mjs "$sso_config"
fi
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM

cat <<MSG

  IT-Portal Stadt Musterstadt is running at  http://$HOST:$PORT/

  Demo logins (password for all: demo):
    mitarbeiterin   employee (Anna Schmidt), orders for herself or colleagues
    vorgesetzter    her line manager (Thomas Becker), decides in "Genehmigungen"
    kollege         a colleague in her team (Jonas Wagner)
    itadmin         IT admin: fulfilment queue, catalogue administration (/admin/)
    controlling     IT controlling
    admin           superuser (break-glass)
$([ -n "$sso_issuer" ] && printf '%s\n' "  Single sign-on: \"Mit Single Sign-on anmelden\" on the login page; at the OpenID" \
    "    provider ($sso_issuer, log var/oidc-provider.log) sign in as anna (Anna Schmidt)" \
    "    or thomas (Thomas Becker), any password.")
  Directory: $DIRECTORY_URL (private slapd, base dc=musterstadt,dc=example); read it with
    ldapsearch -x -LLL -H $DIRECTORY_URL -D "$DIRECTORY_BIND_DN" -y var/slapd/service.secret \\
      -b cn=vpn-users,ou=groups,dc=musterstadt,dc=example member
  Celery workers (one per queue) and beat run on $CELERY_BROKER_URL (logs in
  var/celery-*.log; mail is printed in var/celery-worker-notifications.log).
  Stop with Ctrl+C (the directory keeps running:
  .venv/bin/python manage.py directory_server stop).

MSG
# Served as in production: gunicorn (deploy/gunicorn.conf.py), static files by WhiteNoise.
GUNICORN_BIND="$HOST:$PORT" WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}" \
    .venv/bin/gunicorn -c deploy/gunicorn.conf.py itportal.wsgi
