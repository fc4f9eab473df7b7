#!/usr/bin/env bash
# Set up everything the suite needs, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup --full
.venv/bin/ruff check compiler registry tests bench examples/hostapp
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
