#!/usr/bin/env bash
# Writes docs/reports/: the annual report and the outbound supplement of the reports test's known activity, in
# Chinese and English, as PDF and as PNG pages (pdftoppm), to look at: glyphs, charts, nothing cut or overlapping.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/reports"
rm -rf "$out"
REPORT_PAGES_DIR="$out" PYTHONPATH="$PWD/src" "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider \
  tests/reports/test_reports.py::test_write_the_report_pages_for_the_docs
ls "$out"
