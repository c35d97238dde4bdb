#!/usr/bin/env python3
"""Write a tiny llama-architecture GGUF with random weights, for testing llama-server's HTTP
surface (structured output, slots, errors) without downloading any weights.

The vocabulary is a byte-level BPE one (GPT-2's 50,257 tokens and merges), read from the
vocab-only GGUF that the llama.cpp sources ship (models/ggml-vocab-gpt-2.gguf, vendored in the
llama-cpp-python sdist); the weights are Gaussian noise from a fixed seed. Its text is noise:
it verifies plumbing, not quality.

    python make_model.py VOCAB_GGUF OUT_GGUF [--embd 64] [--layers 2]
"""
import argparse

import numpy as np
import gguf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("out")
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    # llama-server caps each slot's context at the trained length: 16384 leaves 8192 per slot
    # with --parallel 2 -c 16384.
    ap.add_argument("--ctx", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    r = gguf.GGUFReader(a.vocab)

    def field(name):
        f = r.fields[name]
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            sub = f.types[1] if len(f.types) > 1 else None
            if sub == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [f.parts[i].tolist()[0] for i in f.data]
        if f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        return f.parts[f.data[0]].tolist()[0]

    tokens = field("tokenizer.ggml.tokens")
    merges = field("tokenizer.ggml.merges")
    ttypes = field("tokenizer.ggml.token_type")
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("privsynth-random-tiny")
    w.add_context_length(a.ctx)
    w.add_embedding_length(a.embd)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(2 * a.embd)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(a.embd // a.heads)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(field("tokenizer.ggml.pre") if "tokenizer.ggml.pre" in r.fields else "gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(ttypes)
    w.add_token_merges(merges)
    eos = field("tokenizer.ggml.eos_token_id") if "tokenizer.ggml.eos_token_id" in r.fields else n_vocab - 1
    w.add_bos_token_id(field("tokenizer.ggml.bos_token_id") if "tokenizer.ggml.bos_token_id" in r.fields else eos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(False)
    # ChatML, which llama-server recognises without --jinja.
    w.add_chat_template(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )

    rng = np.random.default_rng(a.seed)
    e, ff = a.embd, 2 * a.embd

    def t(*shape, scale=0.02):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w.add_tensor("token_embd.weight", t(n_vocab, e))
    w.add_tensor("output_norm.weight", np.ones(e, dtype=np.float32))
    w.add_tensor("output.weight", t(n_vocab, e))
    for i in range(a.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(e, dtype=np.float32))
        for n in ("q", "k", "v", "output"):
            w.add_tensor(f"blk.{i}.attn_{n}.weight", t(e, e))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(e, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", t(ff, e))
        w.add_tensor(f"blk.{i}.ffn_up.weight", t(ff, e))
        w.add_tensor(f"blk.{i}.ffn_down.weight", t(e, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.out}: llama, n_embd {e}, {a.layers} layers, vocab {n_vocab} (byte-level BPE), random weights")


if __name__ == "__main__":
    main()
