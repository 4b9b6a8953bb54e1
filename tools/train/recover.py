#!/usr/bin/python3
"""Accuracy recovery under the engine's masks: trains low-rank adapters (LoRA) on gate, up and
down of a GGUF Llama model while the MLP runs with DIP or DIP-CA masks, so that the pruned model
comes closer to the dense one. Writes a PEFT folder (adapter_config.json,
adapter_model.safetensors) and the training log; `dip convert-lora` turns the folder into a
llama.cpp GGUF adapter, `dip ... --lora` applies it, `dip convert --lora` merges it.

  tools/train/recover.py -m models/default.gguf --corpus build/corpus --method dip-ca \\
      --density 0.5 --out build/recover/dip-ca-0.5

Losses: ce (next-token cross-entropy), kd (KL from the dense model without adapters to the
masked model with them, the paper's distillation), or mix (their mean). --density-range LO,HI
samples a density per step, so that one adapter serves them all. --method dense trains the
control: an adapter on the unmasked model, the same way and as long.

Training text is the model's training split (never the held-out test text); early stopping on
the validation split. Runs on the CPU (Debian's python3-torch) or a GPU when one is present.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import read_docs  # noqa: E402
from gguf_model import GgufLlama, MaskSpec  # noqa: E402


def tokenize(dip, model, docs):
    """The engine's tokenizer over documents joined by <|endoftext|> (BOS in front of each)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for d in docs:
            f.write("<|endoftext|>" + d)
        name = f.name
    try:
        out = subprocess.run([dip, "tokenize", "-m", model, "-f", name, "--no-bos", "--parse-special"],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(name)
    return torch.tensor([int(t) for t in out.split()], dtype=torch.long)


def _chunk_losses(model, h, y, teacher_h):
    """Summed next-token cross-entropy and KL(teacher || model) of one chunk of final hidden
    states (KL 0 without a teacher)."""
    lp = F.log_softmax(model.head(h).float(), -1)
    ce = F.nll_loss(lp, y, reduction="sum")
    if teacher_h is None:
        return ce, torch.zeros((), device=h.device)
    with torch.no_grad():
        t = F.log_softmax(model.head(teacher_h).float(), -1)
    return ce, (t.exp() * (t - lp)).sum()


def losses(model, h, y, teacher_h=None, chunk=0):
    """Mean cross-entropy and mean KL per token of (B, T, d) final hidden states against (B, T)
    targets, over chunks of `chunk` tokens (0: all at once). With gradients on, each chunk's
    logits are recomputed in the backward pass instead of kept: the (tokens x vocabulary)
    tensors, not the model, are what fill a GPU's memory at large batches."""
    h, y = h.flatten(0, 1), y.flatten()
    th = teacher_h.flatten(0, 1) if teacher_h is not None else None
    n = h.shape[0]
    step = chunk if chunk > 0 else n
    ce, kd = 0.0, 0.0
    for i in range(0, n, step):
        part = (h[i:i + step], y[i:i + step], th[i:i + step] if th is not None else None)
        if torch.is_grad_enabled() and chunk > 0:
            c, k = checkpoint(_chunk_losses, model, *part, use_reentrant=False)
        else:
            c, k = _chunk_losses(model, *part)
        ce, kd = ce + c, kd + k
    return ce / n, kd / n


def sample_docs(docs, n_chars, rng):
    """Random whole documents (long ones cut to 64k characters) up to n_chars of text."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    out, total = [], 0
    for i in order:
        d = docs[i][:65536]
        out.append(d)
        total += len(d)
        if total >= n_chars:
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default="models/default.gguf")
    ap.add_argument("--corpus", default="build/corpus", help="tools/corpus output (train/valid .jsonl)")
    ap.add_argument("--dip", default="build/release/dip", help="the dip executable (tokenizer)")
    ap.add_argument("--out", required=True, help="output folder (PEFT adapter + train_log.json)")
    ap.add_argument("--method", default="dip-ca", choices=["dense", "dip", "dip-ca"])
    ap.add_argument("--density", type=float, default=0.5, help="MLP density of the masks")
    ap.add_argument("--density-range", default="", help="LO,HI: a density drawn per step")
    ap.add_argument("--gamma", type=float, default=0.5, help="DIP-CA: uncached columns' score factor")
    ap.add_argument("--cache", type=float, default=0.5, help="DIP-CA: modelled cache, fraction of columns")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--init", help="PEFT folder to continue training from (same rank)")
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--loss", default="kd", choices=["ce", "kd", "mix"])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=300, help="most optimizer steps")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit)")
    ap.add_argument("--schedule", default="time", choices=["time", "steps"],
                    help="learning-rate warm-up and cosine decay over the run's time budget when "
                    "--minutes ends it before --steps (time), or over --steps alone (steps)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--loss-chunk", type=int, default=8192,
                    help="tokens whose logits are made at once (0: the whole batch); smaller saves GPU memory")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--eval-seqs", type=int, default=16, help="validation sequences per evaluation")
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--train-chars", type=float, default=3e7, help="characters of training text used")
    ap.add_argument("--data", default="", help="tokenized training/validation text: read when present, "
                    "else written (runs on a machine without dip)")
    ap.add_argument("--mask-block", default="1",
                    help="B or UP,DOWN: masks kept in groups of adjacent columns, as dip's --mask-block")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    try:
        blocks = [int(v) for v in args.mask_block.split(",")]
    except ValueError:
        blocks = []
    if len(blocks) == 1:
        blocks *= 2
    if len(blocks) != 2 or min(blocks) < 1:
        ap.error(f"--mask-block {args.mask_block}: give B or UP,DOWN, whole numbers of at least 1")
    if args.steps < 1 or args.batch < 1 or args.seq < 2 or args.eval_every < 1 or args.loss_chunk < 0:
        ap.error("--steps, --batch and --eval-every must be at least 1, --seq at least 2, --loss-chunk at least 0")
    t0 = time.time()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        torch.set_num_threads(os.cpu_count() or 1)
    dev = "cuda" if torch.cuda.is_available() else "cpu"

    if args.data and os.path.exists(args.data):
        d = torch.load(args.data)
        train, valid = d["train"].long(), d["valid"].long()
    else:
        train_docs, valid_docs = read_docs(args.corpus, "train"), read_docs(args.corpus, "valid")
        train = tokenize(args.dip, args.model, sample_docs(train_docs, args.train_chars, rng))
        valid = tokenize(args.dip, args.model, sample_docs(valid_docs, 4e5, rng))
        if args.data:
            torch.save({"train": train.short(), "valid": valid.short()}, args.data)  # ids < 32768
    print(f"data: {len(train):,} training tokens, {len(valid):,} validation tokens ({time.time() - t0:.0f} s)",
          flush=True)

    model = GgufLlama(args.model, rank=args.rank, alpha=args.alpha)
    for k, v in model.w.items():
        model.w[k] = v.to(dev)
    model.inv_freq = model.inv_freq.to(dev)
    if args.init:
        model.load_peft(args.init)
    model.lora.to(dev)
    params = list(model.lora.parameters())
    print(f"model: {model.n_layer} layers, adapters rank {args.rank} on gate/up/down: "
          f"{sum(p.numel() for p in params):,} parameters", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    warm = max(1, args.steps // 20)
    t_train = [t0]  # when the optimizer steps began (set again below)

    def progress(s):
        """Fraction of the run done: of --steps, or of --minutes when that ends it sooner, so the
        learning rate decays to its floor by the time budget's end instead of stopping high."""
        timed = args.minutes and args.schedule == "time"
        by_time = (time.time() - t_train[0]) / (args.minutes * 60 - (t_train[0] - t0)) if timed else 0.0
        return min(1.0, max(s / args.steps, by_time))

    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, max((s + 1) / warm, progress(s) / 0.05)) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress(s)))))
    lo_hi = [float(v) for v in args.density_range.split(",")] if args.density_range else None
    val_density = (lo_hi[0] + lo_hi[1]) / 2 if lo_hi else args.density

    def spec_for(d):
        return MaskSpec(args.method, d, args.gamma, args.cache, *blocks)

    n_val = min(args.eval_seqs, (len(valid) - 1) // args.seq)
    val_x = valid[: n_val * args.seq].view(n_val, args.seq).to(dev)
    val_y = valid[1: n_val * args.seq + 1].view(n_val, args.seq).to(dev)

    def evaluate(spec="masked"):
        with torch.no_grad():
            tot = 0.0
            for i in range(0, n_val, args.batch):
                if spec == "dense":
                    h = model(val_x[i:i + args.batch], None, use_lora=False, logits=False)
                else:
                    h = model(val_x[i:i + args.batch], spec_for(val_density), logits=False)
                ce, _ = losses(model, h, val_y[i:i + args.batch], chunk=args.loss_chunk)
                tot += ce.item() * h.shape[0] * h.shape[1]
            return tot / val_y.numel()

    log = {"args": vars(args), "device": dev, "curve": [], "dense_valid_loss": evaluate("dense")}
    print(f"dense validation loss {log['dense_valid_loss']:.4f} (no masks, no adapter)", flush=True)
    best, best_step, bad = evaluate(), 0, 0
    best_state = {k: v.detach().clone() for k, v in model.lora.state_dict().items()}
    log["curve"].append({"step": 0, "tokens": 0, "valid_loss": best, "seconds": time.time() - t0})
    print(f"step 0: validation loss {best:.4f} (masked, density {val_density}, {'starting' if args.init else 'no'} adapter)", flush=True)
    n_seq = (len(train) - 1) // args.seq
    step, run_loss = 0, []
    t_train[0] = time.time()
    while step < args.steps:
        idx = torch.randint(0, n_seq, (args.batch,))
        x = torch.stack([train[i * args.seq:(i + 1) * args.seq] for i in idx]).to(dev)
        y = torch.stack([train[i * args.seq + 1:(i + 1) * args.seq + 1] for i in idx]).to(dev)
        d = rng.uniform(*lo_hi) if lo_hi else args.density
        h = model(x, spec_for(d), logits=False)
        teacher_h = None
        if args.loss != "ce":
            with torch.no_grad():
                teacher_h = model(x, None, use_lora=False, logits=False)
        ce, kd = losses(model, h, y, teacher_h, args.loss_chunk)
        loss = {"ce": ce, "kd": kd, "mix": 0.5 * (kd + ce)}[args.loss]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        run_loss.append(ce.item())
        el = time.time() - t0
        print(f"\rstep {step}/{args.steps}  train ce {sum(run_loss[-20:]) / len(run_loss[-20:]):.4f}  "
              f"{el:.0f} s", end="", flush=True)
        out_of_time = args.minutes and el > args.minutes * 60
        if step % args.eval_every == 0 or step == args.steps or out_of_time:
            v = evaluate()
            log["curve"].append({"step": step, "tokens": step * args.batch * args.seq,
                                 "train_ce": sum(run_loss[-args.eval_every:]) / len(run_loss[-args.eval_every:]),
                                 "valid_loss": v, "seconds": time.time() - t0})
            mark = ""
            if v < best:
                best, best_step, bad, mark = v, step, 0, " (best)"
                best_state = {k: t.detach().clone() for k, t in model.lora.state_dict().items()}
            else:
                bad += 1
            print(f"\rstep {step}: validation loss {v:.4f}{mark}  ({time.time() - t0:.0f} s)          ", flush=True)
            if bad >= args.patience:
                print("early stop: no improvement", flush=True)
                break
        if out_of_time:
            print("time budget reached", flush=True)
            break
    model.lora.load_state_dict(best_state)
    log.update(best_step=best_step, best_valid_loss=best, seconds=time.time() - t0,
               threads=torch.get_num_threads())
    model.lora.to("cpu")
    model.save_peft(args.out, os.path.basename(args.model),
                    {"method": args.method, "density": args.density, "density_range": args.density_range,
                     "gamma": args.gamma, "cache": args.cache, "mask_block": blocks, "loss": args.loss})
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"wrote {args.out}: best validation loss {best:.4f} at step {best_step}, {time.time() - t0:.0f} s",
          flush=True)


if __name__ == "__main__":
    main()
