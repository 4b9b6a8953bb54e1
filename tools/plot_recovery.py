#!/usr/bin/python3
"""Accuracy recovery at a glance: perplexity (and KL to the original dense model) against MLP
density, per pruning method, without adapters and with each recovery adapter, from `dip sweep`
results (sweep.json, run with --kl-to-base when an adapter is applied). Writes
recovery_ppl.png/.svg and recovery.csv, and prints the table as Markdown.

    tools/plot_recovery.py OUT_DIR "none=docs/results/sweep.json" "dip-ca 0.5 adapter=DIR/sweep.json" ...
    tools/plot_recovery.py --curves OUT_DIR "dip-ca 0.5=DIR/train_log.json" ...   # training curves
"""
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"dip": "tab:blue", "dip-ca": "tab:red", "cats": "tab:green", "teal": "tab:purple", "glu": "tab:orange"}
STYLES = ["--", "-", "-.", ":", (0, (1, 1)), (0, (5, 1)), (0, (3, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "x", "v", "P"]


def curves(out_dir, specs):
    """Validation loss of the masked model with the adapter above the dense model's (no masks, no
    adapter) on the same validation sequences, against training tokens, per run: runs whose
    validation samples differ stay comparable."""
    os.makedirs(out_dir, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, s in enumerate(specs):
        label, path = s.split("=", 1)
        log = json.load(open(path))
        dense = log["dense_valid_loss"]
        pts = log["curve"]
        ax.plot([p["tokens"] / 1e6 for p in pts], [p["valid_loss"] - dense for p in pts],
                marker=MARKERS[i % len(MARKERS)],
                label=f"{label} (best at step {log['best_step']}, {log['seconds'] / 60:.1f} min)")
    ax.axhline(0, color="gray", ls="--", label="dense model, no adapter")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("validation loss above dense (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, f"recovery_curves.{ext}"), dpi=130, bbox_inches="tight")


def main():
    if sys.argv[1:2] == ["--curves"]:
        return curves(sys.argv[2], sys.argv[3:])
    out_dir, specs = sys.argv[1], sys.argv[2:]
    if not specs:
        sys.exit(__doc__)
    os.makedirs(out_dir, exist_ok=True)
    runs = []
    for s in specs:
        label, path = s.split("=", 1)
        runs.append((label, json.load(open(path))))
    base_ppl = runs[0][1]["dense_ppl"]  # the original dense model (the first run has no adapter)
    rows = []
    adapted_methods = {r["method"] for _, d in runs[1:] for r in d["rows"]}
    for label, d in runs:
        dense_done = False
        for r in d["rows"]:
            if r["method"] == "dip-ca" and abs(r["gamma"] - 0.5) > 1e-9:
                continue  # the gamma the adapters are trained for
            method = r["method"]
            if r["target_density"] >= 1:  # the dense model with the adapter (the control's point)
                if dense_done or label == runs[0][0]:
                    continue
                method, dense_done = "dense", True
            elif method not in adapted_methods:
                continue
            rows.append({"adapter": label, "method": method, "target_density": r["target_density"],
                         "mlp_density": r["mlp_density"], "ppl": r["ppl"],
                         "vs_dense_pct": 100 * (r["ppl"] / base_ppl - 1), "kl": r["kl"], "top1": r["top1"],
                         "hit_rate": r["hit_rate"]})
    with open(os.path.join(out_dir, "recovery.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ai, (key, ylabel) in enumerate([("vs_dense_pct", "perplexity vs original dense (%)"),
                                         ("kl", "KL to original dense (nats/token)")]):
        ax = axes[ai]
        for ri, (label, _) in enumerate(runs):
            for method in COLORS:
                pts = sorted((r["mlp_density"], r[key]) for r in rows
                             if r["adapter"] == label and r["method"] == method and r["target_density"] < 1)
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=STYLES[ri % len(STYLES)], marker=MARKERS[ri % len(MARKERS)],
                        color=COLORS[method], label=f"{method}, {label}")
        ax.set_xlabel("MLP density (share of MLP bytes read per token)")
        ax.set_ylabel(ylabel)
        if key == "kl":
            ax.set_yscale("log")
        else:  # perplexity changes go below zero with an adapter
            ax.set_yscale("symlog", linthresh=1.0)
            ax.axhline(0, color="gray", lw=0.8)
        ax.grid(alpha=0.3, which="both")
    # Beside the plots, not over them: with several adapters the legend is long.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("Accuracy recovery: default model, held-out text")
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, f"recovery_ppl.{ext}"), dpi=130, bbox_inches="tight")

    print("| adapter | method | MLP density | perplexity | vs dense | KL to dense | top-1 agreement |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        m = r["method"] + (", gamma 0.5" if r["method"] == "dip-ca" else "")
        if r["method"] == "dense":
            m = "dense (no masks)"
        print(f"| {r['adapter']} | {m} | {r['mlp_density']:.3f} | {r['ppl']:.2f} | {r['vs_dense_pct']:+.1f}% | "
              f"{r['kl']:.4f} | {r['top1']:.3f} |")
    print(f"\nOriginal dense perplexity on these windows: {base_ppl:.2f}")


if __name__ == "__main__":
    main()
