#!/usr/bin/env bash
# The main job, offline: set up, then compile an example skill for an example deployment
# (reference agent, bubblewrap sandbox), store it in the registry and show its audit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
skillc=.venv/bin/skillc
$skillc lint specs/*
$skillc build specs/add-webhook -d examples/deployments/local.toml
$skillc audit latest --section summary --section transcript --section diff --section report
