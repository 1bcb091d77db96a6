#!/usr/bin/env bash
# Writes docs/dashboard/: the dashboard's main pages as PNG (overview in English and Chinese, transfers abroad,
# bases, registers, the auditor's view with a verified manifest), from the browser test's known activity, to look
# at: text readable, nothing cut or overlapping, Chinese shown. Needs Debian's chromium (make system-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/dashboard"
rm -rf "$out"
DESK_SCREENSHOTS="$out" PYTHONPATH="$PWD/src" "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider \
  tests/dashboard/test_browser.py
ls "$out"
