#!/usr/bin/env bash
# Build llama.cpp's OpenAI-compatible `llama-server` from the llama.cpp sources that the
# `llama-cpp-python` sdist on PyPI vendors (no GitHub access needed), CPU only.
#
#   benchmarks/llama_server/build.sh            # -> $LLAMA_DIR/bin/llama-server
#
# LLAMA_DIR (default ~/.cache/privsynth-llama) holds the sdist, the build tree and the binary;
# a second run with the binary present does nothing, so CI can cache that directory.
# Cost on the project's 2-core machine: see benchmarks/README.md ("Real llama.cpp server").
set -euo pipefail
LLAMA_DIR="${LLAMA_DIR:-$HOME/.cache/privsynth-llama}"
LCP_VERSION="${LCP_VERSION:-0.3.36}"
JOBS="${JOBS:-2}"
mkdir -p "$LLAMA_DIR"
BIN="$LLAMA_DIR/bin/llama-server"
if [[ -x "$BIN" ]]; then echo "llama-server already built: $BIN"; exit 0; fi

command -v cmake >/dev/null || { echo "cmake missing: apt-get install -y cmake (or pip install cmake)" >&2; exit 2; }

SDIST="$LLAMA_DIR/llama_cpp_python-$LCP_VERSION.tar.gz"
if [[ ! -f "$SDIST" ]]; then
  # The sdist URL comes from PyPI's JSON API: `pip download --no-binary :all:` would first try to
  # build the package's metadata (scikit-build + a full CMake configure) before saving the file.
  python3 - "$LCP_VERSION" "$SDIST" <<'PY'
import json, sys, urllib.parse, urllib.request
version, out = sys.argv[1], sys.argv[2]
api = f"https://pypi.org/pypi/llama-cpp-python/{version}/json"
meta = json.load(urllib.request.urlopen(api))
(sd,) = [u for u in meta["urls"] if u["packagetype"] == "sdist"]
url = urllib.parse.urljoin(api, sd["url"])
urllib.request.urlretrieve(url, out + ".part")
import hashlib, os
h = hashlib.sha256(open(out + ".part", "rb").read()).hexdigest()
if h != sd["digests"]["sha256"]:
    sys.exit(f"sha256 mismatch for {url}")
os.rename(out + ".part", out)
print("downloaded", url)
PY
fi
SRC="$LLAMA_DIR/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp"
[[ -d "$SRC" ]] || tar -xzf "$SDIST" -C "$LLAMA_DIR"

# Only what llama-server needs: no tests/examples/app, no web UI (its prebuilt assets would be
# downloaded from a model hub), no OpenSSL. -O1 instead of -O3: the model is tiny, compile time
# dominates on 2 cores.
cmake -S "$SRC" -B "$LLAMA_DIR/build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
start=$(date +%s)
cmake --build "$LLAMA_DIR/build" --target llama-server -j "$JOBS"
echo "llama-server build: $(( $(date +%s) - start )) s with -j $JOBS"
mkdir -p "$LLAMA_DIR/bin"
cp "$LLAMA_DIR/build/bin/llama-server" "$BIN"
echo "built $BIN"
