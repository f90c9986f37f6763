#!/usr/bin/env bash
# Refresh the README's pictures (docs/screenshots/) from the browser journeys' artefacts:
#   .venv/bin/pytest -p no:xdist tests/test_journeys_desktop.py tests/test_journeys_phone.py
#   scripts/readme-screenshots.sh
# pngquant (Debian package) makes them small palette PNGs; the journeys' full-page screenshots
# of every step stay under var/screenshots/journeys/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
command -v pngquant >/dev/null 2>&1 || apt_install pngquant
mkdir -p docs/screenshots
for shot in var/screenshots/journeys/*/screen/*.png; do
    pngquant --force --skip-if-larger --strip --quality 60-90 --speed 1 \
        --output "docs/screenshots/$(basename "$shot")" -- "$shot"
done
ls -l docs/screenshots
