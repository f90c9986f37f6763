#!/usr/bin/env bash
# Fail when the German catalogue misses a string or its compiled .mo is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
po=locale/de/LC_MESSAGES/django.po
untranslated=$(msgattrib --untranslated --no-obsolete "$po" | grep -c '^msgid ' || true)
fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$po" | grep -c '^msgid ' || true)
if [ "$untranslated" -gt 0 ] || [ "$fuzzy" -gt 0 ]; then
    echo "German translations incomplete: $untranslated untranslated, $fuzzy fuzzy (run make messages)" >&2
    exit 1
fi
tmp=$(mktemp)
msgfmt --check -o "$tmp" "$po"
if ! cmp -s "$tmp" locale/de/LC_MESSAGES/django.mo; then
    rm -f "$tmp"
    echo "locale/de/LC_MESSAGES/django.mo is stale: run make messages" >&2
    exit 1
fi
rm -f "$tmp"
