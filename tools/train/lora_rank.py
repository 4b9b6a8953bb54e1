#!/usr/bin/python3
"""Lowers a PEFT LoRA folder's rank: each adapted matrix's update B A is replaced by its best
approximation of the new rank (truncated SVD), so that an adapter trained at a higher rank fits a
smaller file. The scale alpha / rank is kept, so the update keeps its size; the lost part is the
smallest singular values', reported per tensor.

  tools/train/lora_rank.py build/recover/dip-0.25 build/recover/dip-0.25-r32 --rank 32

Reads and writes the folders `recover.py` writes (adapter_config.json,
adapter_model.safetensors in F32); `dip convert-lora` turns the result into a GGUF adapter.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_model import read_safetensors, write_safetensors  # noqa: E402


def lower_rank(a, b, rank):
    """(A', B') of the given rank with B' A' the best rank-`rank` approximation of B A, and the
    fraction of B A's Frobenius norm that is lost."""
    u, s, vh = torch.linalg.svd(b.double() @ a.double(), full_matrices=False)
    root, total = s[:rank].sqrt(), s.square().sum()
    lost = (s[rank:].square().sum() / total).sqrt().item() if total > 0 else 0.0
    return (root[:, None] * vh[:rank]).float().contiguous(), (u[:, :rank] * root).float().contiguous(), lost


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="PEFT folder")
    ap.add_argument("dst", help="PEFT folder to write")
    ap.add_argument("--rank", type=int, required=True)
    args = ap.parse_args()
    cfg_path = os.path.join(args.src, "adapter_config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
        old = int(cfg["r"])
        alpha = float(cfg["lora_alpha"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{cfg_path}: not a LoRA adapter config ({e})")
    if not 0 < args.rank < old:
        raise SystemExit(f"{cfg_path}: --rank {args.rank} must be between 1 and the adapter's rank {old} - 1")
    tensors = read_safetensors(os.path.join(args.src, "adapter_model.safetensors"))
    out, worst = {}, 0.0
    for name in sorted(tensors):
        if not name.endswith(".lora_A.weight"):
            continue
        b_name = name.replace(".lora_A.", ".lora_B.")
        if b_name not in tensors:
            raise SystemExit(f"{args.src}: {name} has no {b_name}")
        a, b, lost = lower_rank(tensors[name], tensors[b_name], args.rank)
        out[name], out[b_name] = a, b
        worst = max(worst, lost)
        print(f"{name[:-len('.lora_A.weight')]}: {lost:.3%} of the update's norm lost")
    os.makedirs(args.dst, exist_ok=True)
    write_safetensors(os.path.join(args.dst, "adapter_model.safetensors"), out)
    cfg["r"] = args.rank
    cfg["lora_alpha"] = alpha * args.rank / old  # same alpha / rank: the update keeps its scale
    with open(os.path.join(args.dst, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    print(f"wrote {args.dst}: rank {old} -> {args.rank}, at most {worst:.3%} of a tensor's update lost")


if __name__ == "__main__":
    main()
