#!/usr/bin/env bash
# The LLM stage against a real llama.cpp server: build it (cached), write a tiny random-weight
# GGUF, start `llama-server` on a free loopback port with 2 slots, 8192 tokens of context per
# slot and embeddings on, run the opt-in tests/llama_server.rs against it, stop it.
#
#   benchmarks/llama_server/run.sh
#
# LLAMA_DIR (default ~/.cache/privsynth-llama) caches the llama.cpp build, the venv and the
# model. The model's weights are random: this verifies the HTTP surface (structured output,
# slots, errors, timeouts, embeddings), never text quality.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export LLAMA_DIR="${LLAMA_DIR:-$HOME/.cache/privsynth-llama}"
"$here/build.sh"
SRC="$(ls -d "$LLAMA_DIR"/llama_cpp_python-*/vendor/llama.cpp | head -1)"
if [[ ! -f "$LLAMA_DIR/tiny.gguf" ]]; then
  [[ -x "$LLAMA_DIR/venv/bin/python" ]] || python3 -m venv "$LLAMA_DIR/venv"
  "$LLAMA_DIR/venv/bin/pip" install -q gguf numpy
  "$LLAMA_DIR/venv/bin/python" "$here/make_model.py" "$SRC/models/ggml-vocab-gpt-2.gguf" "$LLAMA_DIR/tiny.gguf"
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$LLAMA_DIR/server.log"
"$LLAMA_DIR/bin/llama-server" -m "$LLAMA_DIR/tiny.gguf" --host 127.0.0.1 --port "$port" \
  --alias tiny --parallel 2 -c 16384 --embeddings --pooling mean --threads "${THREADS:-1}" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  kill -0 $pid 2>/dev/null || { echo "llama-server exited; see $log" >&2; exit 1; }
  sleep 0.5
done
echo "llama-server (pid $pid) on 127.0.0.1:$port; log $log"
cd "$root"
PRIVSYNTH_TEST_LLAMA_URL="http://127.0.0.1:$port/v1" PRIVSYNTH_TEST_LLAMA_MODEL=tiny \
  cargo test --test llama_server -- --test-threads 1 --nocapture
