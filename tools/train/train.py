#!/usr/bin/env python3
"""Trains the default model end to end on one GPU in under 10 minutes, offline:
byte-level BPE tokenizer on the train split, packing, a Llama (SwiGLU, GQA, RoPE, RMSNorm,
tied embeddings) trained in bf16 with a validation curve and early stopping, export to a
Hugging Face folder (fp16 safetensors, shards of at most 16 MiB).

usage: python3 train.py --corpus DIR_WITH_{train,valid}.jsonl[.xz] --out OUT_DIR [--minutes 7]
Everything is seeded; the same data, seed and hyper-parameters give the same loss curve
(within GPU nondeterminism).
"""
import argparse, json, math, os, random, time

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

from corpus import read_docs

EOT = "<|endoftext|>"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=7.0, help="training time budget")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=1536)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--patience", type=int, default=4, help="evaluations without improvement before stopping")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-docs", type=int, default=0, help="smoke tests: use only this many documents")
    args = ap.parse_args()
    t_start = time.time()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log = {"args": vars(args), "curve": []}

    # 1. Tokenizer: byte-level BPE (GPT-2 pre-tokenizer, which llama.cpp knows as "gpt-2").
    train_docs, valid_docs = read_docs(args.corpus, "train"), read_docs(args.corpus, "valid")
    if args.max_docs:
        train_docs, valid_docs = train_docs[: args.max_docs], valid_docs[: max(1, args.max_docs // 10)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(train_docs, trainer=trainer, length=len(train_docs))
    tok.save(os.path.join(args.out, "tokenizer.json"))
    json.dump({"bos_token": EOT, "eos_token": EOT, "add_bos_token": True, "add_eos_token": False,
               "model_max_length": args.seq * 2, "tokenizer_class": "PreTrainedTokenizerFast"},
              open(os.path.join(args.out, "tokenizer_config.json"), "w"), indent=1)
    eot = tok.token_to_id(EOT)
    print(f"tokenizer: {tok.get_vocab_size()} tokens ({time.time() - t_start:.0f} s)", flush=True)

    # 2. Packing: every document starts with <|endoftext|> (BOS, as at inference).
    def pack(docs):
        ids = []
        for enc in tok.encode_batch(docs):
            ids.append(eot)
            ids.extend(enc.ids)
        return torch.tensor(ids, dtype=torch.int32)
    train_ids, valid_ids = pack(train_docs), pack(valid_docs)
    train_bytes = sum(len(d.encode()) for d in train_docs)
    log["train_tokens"], log["valid_tokens"], log["train_bytes"] = len(train_ids), len(valid_ids), train_bytes
    print(f"train {len(train_ids)} tokens ({train_bytes / len(train_ids):.2f} bytes/token), valid {len(valid_ids)} "
          f"({time.time() - t_start:.0f} s)", flush=True)

    # 3. Model.
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=args.d_model, intermediate_size=args.d_ff,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                      max_position_embeddings=args.seq * 2, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=True, attention_dropout=0.0, bos_token_id=eot, eos_token_id=eot,
                      hidden_act="silu", mlp_bias=False, attention_bias=False)
    model = LlamaForCausalLM(cfg).cuda()
    n_params = sum(p.numel() for p in model.parameters())
    n_mlp = sum(p.numel() for n, p in model.named_parameters() if ".mlp." in n)
    log["params"], log["mlp_params"] = n_params, n_mlp
    print(f"model: {n_params / 1e6:.2f}M parameters, MLP {100 * n_mlp / n_params:.1f}%", flush=True)
    dropout = torch.nn.Dropout(args.dropout)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=True)

    # Residual-stream dropout on the embeddings: the data, not the model, is the limit here.
    emb = model.model.embed_tokens
    emb.register_forward_hook(lambda m, i, o: dropout(o) if model.training else o)

    n_train = len(train_ids) - args.seq - 1
    gen = torch.Generator().manual_seed(args.seed)
    train_gpu = train_ids.cuda()

    def batch():
        idx = torch.randint(0, n_train, (args.batch,), generator=gen).cuda()
        offs = idx[:, None] + torch.arange(args.seq + 1, device="cuda")[None, :]
        x = train_gpu[offs].long()
        return x[:, :-1], x[:, 1:]

    @torch.no_grad()
    def evaluate(ids):
        model.eval()
        n = (len(ids) - 1) // args.seq
        losses = []
        x_all = ids[: n * args.seq + 1].cuda().long()
        for i in range(0, n, 64):
            j = min(n, i + 64)
            x = torch.stack([x_all[k * args.seq:(k + 1) * args.seq] for k in range(i, j)])
            y = torch.stack([x_all[k * args.seq + 1:(k + 1) * args.seq + 1] for k in range(i, j)])
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(input_ids=x).logits.float()
            losses.append(torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item())
        model.train()
        return sum(losses) / (n * args.seq)

    budget = args.minutes * 60
    t0 = time.time()
    step, best, best_step, bad = 0, float("inf"), 0, 0
    best_state = None
    warmup = 300
    est_steps = None
    model.train()
    while True:
        elapsed = time.time() - t0
        if elapsed > budget:
            break
        if step == 100:
            est_steps = int(budget / (elapsed / 100))  # cosine schedule over the time budget
        total = est_steps or 100000
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total))))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % args.eval_every == 0:
            vl = evaluate(valid_ids)
            seen = step * args.batch * args.seq
            log["curve"].append({"step": step, "tokens_seen": seen, "train_loss": loss.item(), "valid_loss": vl,
                                 "lr": lr, "seconds": time.time() - t0})
            print(f"step {step} tokens {seen / 1e6:.1f}M epoch {seen / len(train_ids):.2f} train {loss.item():.4f} "
                  f"valid {vl:.4f} lr {lr:.2e} ({time.time() - t0:.0f} s)", flush=True)
            if vl < best:
                best, best_step, bad = vl, step, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= args.patience:
                    print("early stop", flush=True)
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    log.update(best_valid_loss=best, best_step=best_step, best_tokens_seen=best_step * args.batch * args.seq,
               steps=step, train_seconds=time.time() - t0)
    print(f"best valid loss {best:.4f} at step {best_step}", flush=True)

    # 4. Export: fp16 safetensors in shards of at most 16 MiB (16e6 bytes).
    model.config.torch_dtype = "float16"
    model.half().save_pretrained(args.out, max_shard_size="16MB", safe_serialization=True)
    log["total_seconds"] = time.time() - t_start
    json.dump(log, open(os.path.join(args.out, "train_log.json"), "w"), indent=1)
    print(f"done in {log['total_seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
