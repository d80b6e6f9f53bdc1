#!/usr/bin/env bash
# e2e: the official SDKs (openai, @anthropic-ai/sdk, @google/genai; pinned by package-lock.json)
# against a real sluice + sluice-mock, with node's built-in test runner. Each *.test.mjs starts
# its own mock and gateway from $SLUICE_BUILD_DIR (default: <repo>/build), see helpers.mjs.
set -euo pipefail
cd "$(dirname "$0")"
# Install only when node_modules is missing or was installed from another package-lock.json
# (npm ci installs exactly the lock file; the stamp records which one).
stamp=node_modules/.sluice-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
node --test "$@"
