#!/usr/bin/python3
"""Plots of a `dip sweep` result (sweep.json): perplexity and KL to dense against MLP density,
one curve per method (DIP-CA one per gamma), and DIP-CA's trade-off of hit rate against
perplexity. Writes PNG and SVG next to each other.

    tools/plot_sweep.py build/sweep-default/sweep.json [OUT_DIR]
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"dip": ("tab:blue", "o"), "glu": ("tab:orange", "s"), "cats": ("tab:green", "^"),
         "teal": ("tab:purple", "D"), "dip-ca": ("tab:red", "v")}


def curves(rows):
    """(label, method, [(density, row)]) per method; DIP-CA split by gamma."""
    groups = {}
    for r in rows:
        key = (r["method"], r["gamma"] if r["method"] == "dip-ca" else None)
        groups.setdefault(key, []).append(r)
    out = []
    for (method, gamma), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        rs.sort(key=lambda r: r["mlp_density"])
        label = method if gamma is None else f"dip-ca (gamma {gamma:g})"
        out.append((label, method, gamma, rs))
    return out


def save(fig, out_dir, name):
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, f"{name}.{ext}"), dpi=130, bbox_inches="tight")
    plt.close(fig)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: plot_sweep.py SWEEP_JSON [OUT_DIR]")
    path = sys.argv[1]
    try:
        with open(path, encoding="utf-8") as f:
            sweep = json.load(f)
        rows = sweep["rows"]
        dense = sweep["dense_ppl"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"plot_sweep: {path}: not a dip sweep result ({e})")
    if not rows:
        sys.exit(f"plot_sweep: {path}: no rows")
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    title = f"{os.path.basename(sweep['model'])}, {sweep['scored']} tokens scored"

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for label, method, gamma, rs in curves(rows):
        color, marker = STYLE.get(method, ("gray", "x"))
        alpha = 1.0 if gamma in (None, 0.2) else 0.5
        xs = [r["mlp_density"] for r in rs]
        ax1.plot(xs, [r["ppl"] for r in rs], marker=marker, color=color, alpha=alpha, label=label)
        ax2.plot(xs, [max(r["kl"], 1e-6) for r in rs], marker=marker, color=color, alpha=alpha, label=label)
    ax1.axhline(dense, color="black", linestyle="--", linewidth=1, label=f"dense ({dense:.2f})")
    ax1.set_xlabel("MLP density (fraction of MLP weights read per token)")
    ax1.set_ylabel("perplexity")
    ax1.set_yscale("log")
    ax1.set_title("Perplexity against MLP density")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("MLP density")
    ax2.set_ylabel("KL(dense || pruned), nats/token")
    ax2.set_yscale("log")
    ax2.set_title("Divergence from the dense model")
    ax2.grid(True, alpha=0.3)
    fig.suptitle(title)
    save(fig, out_dir, "sweep_ppl")

    ca = [r for r in rows if r["method"] == "dip-ca"]
    base = {r["target_density"]: r for r in rows if r["method"] == "dip"}
    if ca:
        fig, ax = plt.subplots(figsize=(6.5, 4.6))
        for d in sorted({r["target_density"] for r in ca if r["target_density"] < 1}):
            pts = sorted([r for r in ca if r["target_density"] == d], key=lambda r: r["gamma"])
            if d in base:
                pts = pts + [dict(base[d], gamma=1.0)]
            ax.plot([r["hit_rate"] for r in pts], [r["ppl_increase_pct"] for r in pts], marker="o", label=f"density {d:g}")
            for r in pts:
                ax.annotate(f"{r['gamma']:g}", (r["hit_rate"], r["ppl_increase_pct"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        ax.set_xlabel(f"modelled cache hit rate (cache = {ca[0]['cache_fraction']:g} of columns)")
        ax.set_ylabel("perplexity increase over dense (%, log scale)")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title("DIP-CA: gamma trades accuracy for hits (labels: gamma; 1 = DIP)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, out_dir, "sweep_gamma")
    print(f"wrote {out_dir}/sweep_ppl.(png|svg)" + (" and sweep_gamma.(png|svg)" if ca else ""))


if __name__ == "__main__":
    main()
