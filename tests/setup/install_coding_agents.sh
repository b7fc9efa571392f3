#!/usr/bin/env bash
# Install the coding agents Codex CLI (npm `@openai/codex`) and Claude Code (npm
# `@anthropic-ai/claude-code`), pinned in tests/agents/package-lock.json, into
# tests/agents/node_modules (gitignored) for the end-to-end tests that run them headless.
# Both ship their program as a native binary in a per-platform optional npm dependency
# (`@openai/codex@<v>-linux-x64`, `@anthropic-ai/claude-code-linux-x64`), so only the npm
# registry is contacted, and neither needs a newer Node.js than the machine's (Claude Code's
# package asks for node >= 22, but only its postinstall, which copies the binary, runs on node).
# Re-runs are instant while the installed versions match the lock file. Progress goes to
# stderr; the directory is printed on the last line.
set -euo pipefail
DIR="$(cd "$(dirname "$0")/../agents" && pwd)"
command -v node >/dev/null || { echo "install_coding_agents: node is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "install_coding_agents: npm is required" >&2; exit 1; }
BIN="$DIR/node_modules/.bin"

# "<locked versions>" and "<installed versions, and whether both binaries run>".
locked() {
    node -e 'const p=require(process.argv[1]).packages;
        console.log(["@openai/codex","@anthropic-ai/claude-code"].map(n=>p["node_modules/"+n].version).join(" "))' \
        "$DIR/package-lock.json"
}
installed() {
    local codex claude
    codex="$("$BIN/codex" --version 2>/dev/null | awk '{print $NF}')" || codex=""
    claude="$("$BIN/claude" --version 2>/dev/null | awk '{print $1}')" || claude=""
    echo "$codex $claude"
}

want="$(locked)"
if [ "$(installed)" != "$want" ]; then
    exec 9>"$DIR/.install.lock"
    flock 9
    if [ "$(installed)" != "$want" ]; then # another run may have installed it meanwhile
        echo "setup: npm ci @openai/codex and @anthropic-ai/claude-code ($want) into $DIR/node_modules" >&2
        # Claude Code declares node >= 22 for its package; its native binary needs no node.
        (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error --engine-strict=false 2>&1 \
            | grep -v -e nodedir -e EBADENGINE >&2) || true
        have="$(installed)"
        if [ "$have" != "$want" ]; then
            echo "install_coding_agents: npm ci failed: want codex/claude $want, have '$have'" >&2
            exit 1
        fi
    fi
fi
echo "$DIR"
