#!/usr/bin/env bash
# The whole test suite on PostgreSQL, in parallel. Used by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export DATABASE_URL="$(scripts/ensure-postgres.sh)"
export DJANGO_SETTINGS_MODULE=tests.settings
log "database: $DATABASE_URL"
# The worker-crash test runs real Celery workers on Redis.
export CELERY_BROKER_URL="$(scripts/ensure-redis.sh)"
log "broker: $CELERY_BROKER_URL"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python manage.py makemigrations --check --dry-run
.venv/bin/python manage.py check
# The API's OpenAPI document: valid, and complete enough that drf-spectacular has no warning.
.venv/bin/python manage.py spectacular --validate --fail-on-warn --file /dev/null
scripts/check-translations.sh

set +e
.venv/bin/pytest -n "${PYTEST_WORKERS:-auto}" --dist loadfile "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
    log "pytest collected no tests: that is a failure here"
    exit 1
fi
exit $rc
