#!/usr/bin/python3
"""The training tool's masks and model against the engine's:
1. DIP and DIP-CA masks (tools/train/dipmask.py) equal the engine's choice (mask_replay, built
   from src/sparsity and src/cache) on the same random scores, token by token, cache included,
   single columns and columns kept in groups (--mask-block).
2. The training tool's forward pass of a GGUF model gives the engine's logits (dip eval).
3. Adapters written by save_peft load back exactly (recover.py --init); bad ones are one-line
   errors naming the file. recover.py's losses over chunks of tokens equal the whole batch's.
   lora_rank.py lowers a rank to the best approximation of each update.
   usage: test_masks.py MASK_REPLAY DIP MODEL WORKDIR
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

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
# The last three: masks kept in groups (--mask-block), one of them with a shorter last group.
for n, density, cap_frac, gamma, block in [(96, 0.5, 0.5, 0.5, 1), (512, 0.5, 0.5, 0.2, 1), (1536, 0.25, 0.3, 0.5, 1),
                                           (200, 0.7, 0.0, 1.0, 1), (64, 0.9, 0.95, 0.1, 1), (512, 0.5, 0.5, 0.5, 2),
                                           (1536, 0.25, 0.3, 0.5, 4), (203, 0.7, 0.0, 1.0, 3)]:
    B, T = 3, 60
    # Heavy-tailed scores with a slowly drifting per-column scale, like |x| of a real model.
    scale = torch.rand(B, 1, n, generator=g) * 3
    scores = (torch.randn(B, T, n, generator=g).abs() * (1 + scale)).float()
    up, down = dipmask.dip_optimized_split(density)
    k = dipmask.keep_count(up, n)
    cap = int(np.floor(cap_frac * n))
    cache = dipmask.LruCache(B, n, cap) if cap > 0 else None
    ours = dipmask.sequential_masks(scores, k, cache, gamma, block).numpy().astype(np.uint8)
    f_in, f_out = os.path.join(work, "scores.bin"), os.path.join(work, "masks.bin")
    with open(f_in, "wb") as f:
        f.write(np.array([B, T, n, k, cap, block], dtype="<u4").tobytes())
        f.write(np.array([gamma], dtype="<f4").tobytes())
        f.write(scores.numpy().astype("<f4").tobytes())
    subprocess.run([replay, f_in, f_out], check=True)
    engine = np.fromfile(f_out, dtype=np.uint8).reshape(B, T, n)
    same = (engine == ours).all(axis=2).mean()
    check(same == 1.0, f"masks n={n} k={k} cache={cap} gamma={gamma} block={block}: "
                       f"{same * 100:.1f}% of tokens identical")

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


# Training losses over chunks of tokens (recover.py --loss-chunk) equal the whole-batch ones,
# values and adapter gradients, and the plain formulas on full logits.
import recover  # noqa: E402

toks = torch.randint(0, a.w["token_embd_weight"].shape[0], (2, 49), generator=g)
x, y = toks[:, :-1], toks[:, 1:]
spec = recover.MaskSpec("dip-ca", 0.5, 0.5, 0.5)
with torch.no_grad():
    teacher_h = a(x, None, use_lora=False, logits=False)
    ref_lp = F.log_softmax(a(x, spec), -1)
    teacher_lp = F.log_softmax(a.head(teacher_h), -1)
    ref_ce = F.nll_loss(ref_lp.flatten(0, 1), y.flatten())
    ref_kd = F.kl_div(ref_lp, teacher_lp, log_target=True, reduction="none").sum(-1).mean()
got = []
for chunk in (0, 37):
    a.lora.zero_grad(set_to_none=True)
    ce, kd = recover.losses(a, a(x, spec, logits=False), y, teacher_h, chunk)
    (0.5 * (ce + kd)).backward()
    got.append((ce.item(), kd.item(), [p.grad.clone() for p in a.lora.parameters()]))
(ce0, kd0, g0), (ce1, kd1, g1) = got
# float32 sums in another order: differences of a few 1e-6 of the largest gradient; a wrong
# chunking differs by the gradients' own size.
same_grads = all(torch.allclose(u, v, rtol=1e-4, atol=2e-5 * u.abs().max().item()) for u, v in zip(g0, g1))
check(abs(ce0 - ref_ce.item()) < 1e-4 * ref_ce.item() and abs(kd0 - ref_kd.item()) < 1e-4 * max(ref_kd.item(), 1e-3)
      and abs(ce1 - ce0) < 1e-5 * ce0 and abs(kd1 - kd0) < 1e-5 * max(kd0, 1e-3) and same_grads,
      f"losses over 37-token chunks: ce {ce1:.5f} (whole {ce0:.5f}, plain {ref_ce.item():.5f}), "
      f"kd {kd1:.5f} (whole {kd0:.5f}, plain {ref_kd.item():.5f}), gradients equal")

# Rank lowering (lora_rank.py): the best approximation of B A, the update's scale kept.
import lora_rank  # noqa: E402

x = torch.randn(96, 4, generator=g) @ torch.randn(4, 64, generator=g)  # an update of rank 4
a2, b2, lost = lora_rank.lower_rank(torch.randn(8, 64, generator=g), torch.randn(96, 8, generator=g), 3)
a4, b4, lost4 = lora_rank.lower_rank(x[:8, :], torch.eye(96, 8), 4)  # B A = x[:8] padded: rank 4
check(a2.shape == (3, 64) and b2.shape == (96, 3) and 0 < lost < 1, f"rank 8 -> 3: shapes, {lost:.1%} lost")
check(lost4 < 1e-6 and torch.allclose(b4 @ a4, torch.eye(96, 8) @ x[:8, :], atol=1e-4),
      "an update of rank 4 lowered to rank 4 is unchanged")
low = os.path.join(work, "peft-rank2")
lora_rank_py = os.path.join(os.path.dirname(lora_rank.__file__), "lora_rank.py")
r = subprocess.run([sys.executable, lora_rank_py, folder, low, "--rank", "2"], capture_output=True, text=True)
c = GgufLlama(model, rank=2, alpha=4)
c.load_peft(low)
cfg = json.load(open(os.path.join(low, "adapter_config.json")))
ok = r.returncode == 0 and cfg["r"] == 2 and cfg["lora_alpha"] == 4
for (ka, la), (kc, lc) in zip(a.lora.items(), c.lora.items()):
    full, approx = la.B @ la.A, lc.B @ lc.A
    u, s, vh = torch.linalg.svd(full.double())
    best = (u[:, :2] * s[:2]) @ vh[:2]
    ok = ok and torch.allclose(approx.double(), best, atol=1e-3 * s[0].item())
check(ok, "lora_rank.py folder: every update is its best rank-2 approximation, alpha 8 -> 4")
r = subprocess.run([sys.executable, lora_rank_py, folder, low, "--rank", "9"], capture_output=True, text=True)
check(r.returncode != 0 and "must be between" in r.stderr and r.stderr.count("\n") == 1,
      "lora_rank.py --rank above the adapter's: one-line error")
r = subprocess.run([sys.executable, lora_rank_py, os.path.join(work, "no-such-folder"), low, "--rank", "2"],
                   capture_output=True, text=True)
check(r.returncode != 0 and "not a LoRA adapter config" in r.stderr and r.stderr.count("\n") == 1,
      "lora_rank.py on a folder without an adapter: one-line error")
r = subprocess.run([sys.executable, os.path.join(os.path.dirname(lora_rank.__file__), "recover.py"), "--out", low,
                    "--steps", "0"], capture_output=True, text=True)
check(r.returncode != 0 and "must be at least 1" in r.stderr and "Traceback" not in r.stderr,
      "recover.py --steps 0: usage error, no traceback")
for bad in ("0", "2,x", "2,2,2"):
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(lora_rank.__file__), "recover.py"), "--out", low,
                        "--mask-block", bad], capture_output=True, text=True)
    check(r.returncode != 0 and f"--mask-block {bad}: give B or UP,DOWN" in r.stderr and "Traceback" not in r.stderr,
          f"recover.py --mask-block {bad}: usage error, no traceback")


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
