#!/usr/bin/env bash
# The LLM stage against a real llama.cpp server: build it (cached), write a tiny random-weight
# GGUF, start `llama-server` on a free loopback port with 2 slots, 8192 tokens of context per
# slot and embeddings on, run the opt-in tests/llama_server.rs against it, stop it; then check the
# API key against a second server started with --api-key.
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

# The API key: a server that requires one refuses a run without it before anything is spent,
# and answers with it (the key goes only in the Authorization header).
kport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$LLAMA_DIR/bin/llama-server" -m "$LLAMA_DIR/tiny.gguf" --alias tiny --host 127.0.0.1 --port "$kport" \
  --api-key privsynth-test-key --threads "${THREADS:-1}" >"$LLAMA_DIR/server-key.log" 2>&1 &
kpid=$!
trap 'kill $pid $kpid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$kport/health" >/dev/null && break; sleep 0.5; done
tmp="$(mktemp -d)"
ps() { cargo run -q --bin privsynth -- "$@"; }
ps fit data/synthea/patients.csv --schema schemas/synthea-patients.yaml --epsilon 1 --mechanism mst -o "$tmp/m.json" --ledger "$tmp/l.jsonl" -q
llm=(--llm-url "http://127.0.0.1:$kport/v1" --llm-model tiny --llm-dialect llama-cpp --llm-no-cache --rows 2 --llm-batch 2 --llm-max-chars 20)
set +e
ps sample "$tmp/m.json" -o "$tmp/a.csv" "${llm[@]}" 2>"$tmp/no-key.txt"; code=$?
set -e
grep -q "refused the API key (HTTP 401" "$tmp/no-key.txt" && [[ $code == 2 ]] || { echo "api key: expected a refusal, got exit $code:"; cat "$tmp/no-key.txt"; exit 1; }
PRIVSYNTH_LLM_API_KEY=privsynth-test-key ps sample "$tmp/m.json" -o "$tmp/b.csv" "${llm[@]}" --llm-transcript "$tmp/t.jsonl" 2>"$tmp/key.txt"
grep -q "answers: 1 accepted" "$tmp/key.txt" || { echo "api key: no accepted answer:"; cat "$tmp/key.txt"; exit 1; }
if grep -q privsynth-test-key "$tmp/t.jsonl" "$tmp/key.txt" "$tmp/b.csv"; then echo "api key: the key was written somewhere"; exit 1; fi
echo "api key: refused without it (exit 2, nothing spent), answered with it, never written: ok"
rm -rf "$tmp"
