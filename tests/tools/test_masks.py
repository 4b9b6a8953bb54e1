#!/usr/bin/python3
"""The training tool's masks and model against the engine's:
1. DIP and DIP-CA masks (tools/train/dipmask.py) equal the engine's choice (mask_replay, built
   from src/sparsity and src/cache) on the same random scores, token by token, cache included.
2. The training tool's forward pass of a GGUF model gives the engine's logits (dip eval).
3. Adapters written by save_peft load back exactly (recover.py --init); bad ones are one-line
   errors naming the file.
   usage: test_masks.py MASK_REPLAY DIP MODEL WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "train"))
import dipmask  # noqa: E402
from gguf_model import GgufLlama, write_safetensors  # noqa: E402

replay, dip, model, work = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    failures += not ok


g = torch.Generator().manual_seed(7)
for n, density, cap_frac, gamma in [(96, 0.5, 0.5, 0.5), (512, 0.5, 0.5, 0.2), (1536, 0.25, 0.3, 0.5),
                                    (200, 0.7, 0.0, 1.0), (64, 0.9, 0.95, 0.1)]:
    B, T = 3, 60
    # Heavy-tailed scores with a slowly drifting per-column scale, like |x| of a real model.
    scale = torch.rand(B, 1, n, generator=g) * 3
    scores = (torch.randn(B, T, n, generator=g).abs() * (1 + scale)).float()
    up, down = dipmask.dip_optimized_split(density)
    k = dipmask.keep_count(up, n)
    cap = int(np.floor(cap_frac * n))
    cache = dipmask.LruCache(B, n, cap) if cap > 0 else None
    ours = dipmask.sequential_masks(scores, k, cache, gamma).numpy().astype(np.uint8)
    f_in, f_out = os.path.join(work, "scores.bin"), os.path.join(work, "masks.bin")
    with open(f_in, "wb") as f:
        f.write(np.array([B, T, n, k, cap], dtype="<u4").tobytes())
        f.write(np.array([gamma], dtype="<f4").tobytes())
        f.write(scores.numpy().astype("<f4").tobytes())
    subprocess.run([replay, f_in, f_out], check=True)
    engine = np.fromfile(f_out, dtype=np.uint8).reshape(B, T, n)
    same = (engine == ours).all(axis=2).mean()
    check(same == 1.0, f"masks n={n} k={k} cache={cap} gamma={gamma}: {same * 100:.1f}% of tokens identical")

# The forward pass: dense logits of a few tokens, against dip eval --dump-logits.
toks = [0, 464, 1176, 286, 262, 4041, 11, 290, 340, 373, 1, 17, 900, 31]
dump = os.path.join(work, "logits.bin")
subprocess.run([dip, "eval", "-m", model, "--tokens", ",".join(map(str, toks)), "--dump-logits", dump, "-t", "2"],
               check=True, capture_output=True)
m = GgufLlama(model)
V = m.w["token_embd_weight"].shape[0]
eng = torch.from_numpy(np.fromfile(dump, dtype=np.float32).reshape(len(toks), V))
with torch.no_grad():
    ours = m(torch.tensor([toks]))[0]
rel = ((ours - eng).abs().max() / eng.abs().max()).item()
agree = (ours.argmax(-1) == eng.argmax(-1)).float().mean().item()
check(rel < 2e-2 and agree == 1.0, f"dense logits vs dip eval: max relative difference {rel:.2e}, top-1 agreement {agree * 100:.0f}%")

# Continued training: an adapter saved and loaded back is the same; bad adapters fail clearly.
a = GgufLlama(model, rank=4, alpha=8)
with torch.no_grad():
    for p in a.lora.parameters():
        p.copy_(torch.randn(p.shape, generator=g))
folder = os.path.join(work, "peft")
a.save_peft(folder, "m.gguf")
b = GgufLlama(model, rank=4, alpha=8)
b.load_peft(folder)
check(all(torch.equal(x, y) for x, y in zip(a.lora.parameters(), b.lora.parameters())),
      "adapter saved and loaded back bit-exact")


def fails_with(needle, folder, rank=4):
    try:
        GgufLlama(model, rank=rank, alpha=8).load_peft(folder)
    except SystemExit as e:
        msg = str(e.code)
        return needle in msg and "\n" not in msg
    return False


st = os.path.join(folder, "adapter_model.safetensors")
good = open(st, "rb").read()
check(fails_with("has shape", folder, rank=8), "another rank: error naming the tensor's shape")
check(fails_with("cannot read", os.path.join(work, "no-such-folder")), "missing adapter: error naming the file")
open(st, "wb").write(good[: len(good) // 2])
check(fails_with("does not fit in the file", folder), "truncated adapter: error")
write_safetensors(st, {"base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": torch.zeros(4, 8)})
check(fails_with("is missing", folder), "adapter without a tensor: error naming it")
open(st, "wb").write(b"not a safetensors file")
check(fails_with("not a safetensors file", folder), "garbage: error")
sys.exit(1 if failures else 0)
