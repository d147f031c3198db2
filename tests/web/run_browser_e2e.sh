#!/bin/sh
# ctest entry of the browser test: installs playwright-core from package-lock.json (npm ci) when
# node_modules is missing, then runs browser_e2e.test.mjs with node's test runner. playwright-core
# stays at 1.61.1, the last release that runs on Debian 12's Node.js 18 (1.62 needs Node.js 20).
# Usage: run_browser_e2e.sh [path/to/clouddetect]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] && export CLOUDDETECT_BIN="$1"
if [ ! -x /usr/bin/chromium ]; then
  echo "web_browser_e2e: /usr/bin/chromium is missing (install it with scripts/deps.sh test)" >&2
  exit 1
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node --test --test-reporter=spec "$here/browser_e2e.test.mjs"
