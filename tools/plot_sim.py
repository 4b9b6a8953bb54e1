#!/usr/bin/python3
"""Figures and a one-page Markdown report of a simulated sweep (`dip sweep --simulate`,
simulate.json):
  sim_tps_dram    tokens/s against DRAM size, per method (its best point within each perplexity
                  budget), one panel per flash speed, dense streaming as the baseline;
  sim_pareto      perplexity increase against tokens/s at one DRAM size and flash speed, every
                  point, the Pareto front per method;
  sim_gamma       DIP-CA's gamma trade-off at that DRAM size: hit rate, perplexity and tokens/s;
  report.md       the setting, the comparisons against dense streaming (gain at equal DRAM, DRAM
                  saved at equal tokens/s) and the figures.

    tools/plot_sim.py OUT/simulate.json [OUT_DIR] [--dram MB] [--flash GBPS]
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"dense": ("black", "s"), "dip": ("tab:blue", "o"), "dip-ca": ("tab:red", "v"),
         "glu": ("tab:orange", "s"), "teal": ("tab:purple", "D")}


def save(fig, out_dir, name):
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, f"{name}.{ext}"), dpi=130, bbox_inches="tight")
    plt.close(fig)


def nearest(values, want):
    return min(values, key=lambda v: abs(v - want))


def envelope(rows, method, bw, budget, drams):
    """Per DRAM size: (tokens/s, label) of the method's best point within the budget."""
    out = []
    for d in drams:
        pts = [r for r in rows if r["method"] == method and r["flash_bw"] == bw and r["dram_bytes"] == d
               and r["ppl_increase_pct"] <= budget]
        best = max(pts, key=lambda r: r["tokens_per_s"], default=None)
        out.append((best["tokens_per_s"], best["label"]) if best else (None, None))
    return out


def pareto(points):
    """Points (tps, inc) not beaten on both axes, sorted by tokens/s."""
    front, best_inc = [], float("inf")
    for tps, inc in sorted(points, key=lambda p: (-p[0], p[1])):
        if inc < best_inc:
            front.append((tps, inc))
            best_inc = inc
    return sorted(front)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--dram", type=float, help="DRAM size (MB) of the Pareto and gamma figures (default: the middle one)")
    ap.add_argument("--flash", type=float, help="flash speed (GB/s) of those figures (default: the device's)")
    a = ap.parse_args()
    try:
        with open(a.json, encoding="utf-8") as f:
            sim = json.load(f)
        rows, cmp, device = sim["rows"], sim["comparisons"], sim["device"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"plot_sim: {a.json}: not a dip sweep --simulate result ({e})")
    if not rows:
        sys.exit(f"plot_sim: {a.json}: no rows")
    out_dir = a.out_dir or os.path.dirname(os.path.abspath(a.json))
    os.makedirs(out_dir, exist_ok=True)
    drams = sorted({r["dram_bytes"] for r in rows})
    bws = sorted({r["flash_bw"] for r in rows})
    budgets = sim["budgets_pct"]
    methods = [m for m in STYLE if any(r["method"] == m for r in rows)]
    pick_bw = nearest(bws, a.flash * 1e9 if a.flash else device["flash_bw"])
    pick_dram = nearest(drams, a.dram * 1e6) if a.dram else drams[len(drams) // 2]
    proj = sim.get("projection")
    # A projection is labelled as such wherever its numbers appear.
    model = (f"{proj['shape']} (SHAPE-ONLY PROJECTION)" if proj else os.path.basename(sim["model"]))
    mb = [d / 1e6 for d in drams]

    # tokens/s against DRAM size
    fig, axes = plt.subplots(1, len(bws), figsize=(5.2 * len(bws), 4.4), squeeze=False)
    for ax, bw in zip(axes[0], bws):
        for m in methods:
            color, marker = STYLE[m]
            if m == "dense":
                tps = [next(r["tokens_per_s"] for r in rows if r["method"] == "dense" and r["flash_bw"] == bw
                            and r["dram_bytes"] == d) for d in drams]
                ax.plot(mb, tps, color=color, marker=marker, label="dense streaming")
                continue
            for budget, ls in zip(budgets, ("-", "--", ":")):
                env = envelope(rows, m, bw, budget, drams)
                xs = [x for x, (t, _) in zip(mb, env) if t]
                ys = [t for t, _ in env if t]
                if ys:
                    ax.plot(xs, ys, color=color, marker=marker, ls=ls, label=f"{m}, ppl +{budget:g}% max")
        ax.set_yscale("log")
        ax.set_xlabel("DRAM size (MB)")
        ax.set_ylabel("tokens/s (simulated)")
        ax.set_title(f"flash {bw / 1e9:g} GB/s")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{model} on {device['name']} ({device['dram_bw'] / 1e9:g} GB/s DRAM), {sim['bits']:g}-bit weights")
    save(fig, out_dir, "sim_tps_dram")

    # Pareto: perplexity increase against tokens/s at one DRAM size and flash speed
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    at = [r for r in rows if r["dram_bytes"] == pick_dram and r["flash_bw"] == pick_bw]
    for m in methods:
        color, marker = STYLE[m]
        pts = [(r["tokens_per_s"], r["ppl_increase_pct"]) for r in at if r["method"] == m]
        ax.scatter([p[0] for p in pts], [max(p[1], 0.01) for p in pts], color=color, marker=marker, alpha=0.5,
                   label=m if m != "dense" else "dense streaming")
        front = pareto(pts)
        if m != "dense" and len(front) > 1:
            ax.plot([p[0] for p in front], [max(p[1], 0.01) for p in front], color=color)
    for budget in budgets:
        ax.axhline(budget, color="gray", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("tokens/s (simulated)")
    ax.set_ylabel("perplexity increase over dense (%; 0 drawn at 0.01)")
    ax.set_title(f"{pick_dram / 1e6:.1f} MB DRAM, flash {pick_bw / 1e9:g} GB/s: the Pareto front per method")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, out_dir, "sim_pareto")

    # DIP-CA's gamma trade-off
    ca = [r for r in at if r["method"] == "dip-ca"]
    if ca:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for d in sorted({r["target_density"] for r in ca}):
            rs = sorted([r for r in ca if r["target_density"] == d], key=lambda r: r["gamma"])
            plain = [r for r in at if r["method"] == "dip" and r["target_density"] == d]
            g = [r["gamma"] for r in rs] + ([1.0] if plain else [])
            rs2 = rs + plain[:1]
            ax1.plot(g, [r["hit_rate"] for r in rs2], marker="o", label=f"density {d:g}")
            ax2.plot([r["ppl_increase_pct"] for r in rs2], [r["tokens_per_s"] for r in rs2], marker="o",
                     label=f"density {d:g}")
            for r, gg in zip(rs2, g):
                ax2.annotate(f"{gg:g}", (r["ppl_increase_pct"], r["tokens_per_s"]), fontsize=7)
        ax1.set_xlabel("gamma (1 = plain DIP)")
        ax1.set_ylabel("cache hit rate")
        ax2.set_xlabel("perplexity increase (%)")
        ax2.set_ylabel("tokens/s (simulated); labels: gamma")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"DIP-CA at {pick_dram / 1e6:.1f} MB DRAM, flash {pick_bw / 1e9:g} GB/s")
        save(fig, out_dir, "sim_gamma")

    # The report
    lines = [f"# What {device['name']} gains from DIP and DIP-CA: {model}", "",
             (f"Shape-only projection (`dip sweep --simulate --sim-shape {proj['shape']}`): the masks are synthetic "
              f"({proj['synthetic_tokens']} tokens per point, DIP's split of each point's density, log-normal column "
              f"popularity of sigma {proj['skew']:g}, DIP-CA rescored against the live simulated cache); each point's "
              f"accuracy is the engine's on {os.path.basename(sim['model'])} ({proj['accuracy_from']}, "
              f"{sim['scored']} scored tokens), transferred, not measured on this shape." if proj else
              f"Simulated with the paper's memory-traffic model (`dip sweep --simulate`); every point's accuracy and "
              f"masks come from the engine on {sim['scored']} scored tokens of the text ({sim['chunks']} windows of "
              f"{sim['ctx']}; dense perplexity {sim['dense_ppl']:.4f})."), "",
             f"- Device: {device['name']}, DRAM {device['dram_bw'] / 1e9:g} GB/s; {device['source']}",
             f"- Weights {sim['bits']:g}-bit: static part (attention, KV cache at the mean length, embeddings) "
             f"{sim['static_bytes'] / 1e6:.1f} MB, MLP {sim['mlp_bytes'] / 1e6:.1f} MB; eviction {sim['policy']}",
             "- DRAM sizes: " + ", ".join(f"{d['bytes'] / 1e6:.1f} MB ({100 * d['mlp_cache_share']:.0f}% of the MLP cached)"
                                          for d in sim["dram_sizes"]),
             "- Flash speeds: " + ", ".join(f"{b / 1e9:g} GB/s" for b in bws),
             (f"- {len(sim['accuracy'])} points (accuracy read from {proj['accuracy_from']}), " if proj and
              proj["accuracy_from"].endswith(".json") else
              f"- {len(sim['accuracy'])} engine runs (DIP-CA once per DRAM size, against exactly that cache), ") +
             f"{len(rows)} simulated rows; {sim['seconds']:.0f} s in all, the simulator {sim['simulator_seconds']:.1f} s "
             f"({sim['simulator_events'] / max(sim['simulator_seconds'], 1e-9) / 1e6:.0f} M column accesses/s)", "",
             "## Against dense streaming", "",
             "Gain: the method's best tokens/s within the perplexity budget over dense streaming's, at the same DRAM. "
             "DRAM saved: for dense streaming at that DRAM size, how much less DRAM the method needs for the same "
             "tokens/s (interpolated between swept sizes; '>=' where it already gets there at the smallest size), "
             "in total DRAM and counted on the MLP cache alone (the static part does not shrink). Each cell: "
             "gain, DRAM saved / MLP cache saved (the best point); '-': dense's tokens/s not reached.", ""]
    for bw in bws:
        lines += [f"### Flash {bw / 1e9:g} GB/s", "",
                  "| method | ppl increase at most | " + " | ".join(f"{x:.1f} MB" for x in mb) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in mb) + " |"]
        dense_row = [next(c["dense_tps"] for c in cmp if c["flash_bw"] == bw and c["dram_bytes"] == d) for d in drams]
        lines.append("| dense streaming | 0 | " + " | ".join(f"{t:.3g} t/s" for t in dense_row) + " |")
        for m in methods:
            if m == "dense":
                continue
            for budget in budgets:
                cells = []
                for d in drams:
                    c = next((c for c in cmp if c["method"] == m and c["flash_bw"] == bw and c["dram_bytes"] == d
                              and c["max_ppl_increase_pct"] == budget), None)
                    if c is None or c["method_tps"] == 0:
                        cells.append("none within")
                        continue
                    bound = ">=" if c["reduction_is_lower_bound"] else ""
                    saved = ("-" if c["equal_tps_dram_bytes"] == 0 else
                             f"{bound}{100 * c['memory_reduction']:.0f}% / {bound}{100 * c.get('cache_reduction', 0):.0f}%")
                    cells.append(f"{c['gain']:.2f}x, {saved} ({c['best']})")
                lines.append(f"| {m} | {budget:g}% | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Figures", "", "![tokens/s against DRAM size](sim_tps_dram.png)", "",
              f"![perplexity against tokens/s at {pick_dram / 1e6:.1f} MB](sim_pareto.png)", ""]
    if ca:
        lines += ["![DIP-CA gamma trade-off](sim_gamma.png)", ""]
    lines += ["Only memory traffic is timed (the paper's model: no compute, no per-request cost); "
              "`docs/simulator.md` says how far that is from a real flash run.", ""]
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"plot_sim: wrote sim_tps_dram, sim_pareto{', sim_gamma' if ca else ''} (PNG + SVG) and report.md to {out_dir}")


if __name__ == "__main__":
    main()
