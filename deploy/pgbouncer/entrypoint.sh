#!/bin/sh
# The password of the portal's role from the environment into PgBouncer's auth file.
set -eu
umask 077
printf '"itportal" "%s"\n' "$POSTGRES_PASSWORD" > /etc/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
