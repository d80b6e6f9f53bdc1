#!/usr/bin/env bash
# e2e: installs the official openai npm SDK (pinned by package-lock.json) and runs node's
# built-in test runner against a real sluice + sluice-mock.
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -d node_modules/openai ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node --test
