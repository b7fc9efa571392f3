#!/usr/bin/env bash
# Debian packages the tests need; installs only what is missing (needs root or sudo).
#   cmake, g++, make   build llama-server          python3-venv   the test virtualenv
#   caddy              TLS in front of the gateway (tests/e2e/test_caddy.py runs the Caddyfile)
#   systemd            systemd-analyze, to verify and score the units in systemd/
#   tmux               the admin TUI in a real terminal (tests/tui/test_tmux.py)
#   postgresql         the PostgreSQL store: tests/pg starts a throwaway cluster on loopback
#                      (as the `postgres` user this package creates, when the tests run as root)
#   wrk                the load generator of bench/overhead.py
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v tmux >/dev/null || need+=(tmux)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v caddy >/dev/null || need+=(caddy)
command -v wrk >/dev/null || need+=(wrk)
command -v systemd-analyze >/dev/null || need+=(systemd)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# Browser login end to end: a real browser (driven by Playwright) and a real OIDC provider.
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ ${#need[@]} -eq 0 ] && exit 0
echo "setup: apt-get install ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq &&
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "setup: apt-get install ${need[*]} failed" >&2
    exit 1
fi
# Debian starts caddy.service (on :80) when it installs caddy on a host run by systemd; the
# tests start their own Caddy on loopback ports, so stop and disable the packaged one again.
if [[ " ${need[*]} " == *" caddy "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now caddy.service >/dev/null 2>&1 || true
fi
# Likewise Debian's own PostgreSQL cluster (on :5432): the tests run a throwaway one of theirs.
if [[ " ${need[*]} " == *" postgresql "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now postgresql.service >/dev/null 2>&1 || true
fi
