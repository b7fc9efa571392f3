#!/usr/bin/env bash
# Install the npm package `oidc-provider` (pinned in tests/oidc/package-lock.json) into
# tests/oidc/node_modules (gitignored) for the end-to-end browser-login tests. Re-runs are
# instant while the installed version matches the lock file. Prints the directory on its last
# line. Only the npm registry is contacted.
set -euo pipefail
DIR="$(cd "$(dirname "$0")/../oidc" && pwd)"
command -v node >/dev/null || { echo "install_oidc_provider: node is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "install_oidc_provider: npm is required" >&2; exit 1; }

want="$(node -e 'const l=require(process.argv[1]); console.log(l.packages["node_modules/oidc-provider"].version)' "$DIR/package-lock.json")"
have="$(node -e 'try{console.log(require(process.argv[1]).version)}catch{console.log("")}' "$DIR/node_modules/oidc-provider/package.json")"
if [ "$want" != "$have" ]; then
    echo "setup: npm ci oidc-provider@$want into $DIR/node_modules" >&2
    exec 9>"$DIR/.install.lock"
    flock 9
    (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'nodedir' >&2) || true
    [ -f "$DIR/node_modules/oidc-provider/package.json" ] \
        || { echo "install_oidc_provider: npm ci failed" >&2; exit 1; }
fi
echo "$DIR"
