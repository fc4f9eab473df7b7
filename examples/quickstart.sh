#!/usr/bin/env bash
# The main job, offline: set up, then lint and show the example specs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
.venv/bin/skillc lint specs/*
.venv/bin/skillc show specs/add-webhook
