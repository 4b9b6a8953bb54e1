#!/usr/bin/env python3
"""Draws the training and validation loss against tokens seen from train_log.json as SVG
(standard library only). usage: plot_curve.py train_log.json out.svg"""
import json, sys

log = json.load(open(sys.argv[1]))
pts = log["curve"]
W, H, L, R, T, B = 640, 400, 60, 20, 30, 50
xs = [p["tokens_seen"] / 1e6 for p in pts]
series = {"train loss": ([p["train_loss"] for p in pts], "#d62728"), "validation loss": ([p["valid_loss"] for p in pts], "#1f77b4")}
ymin = min(min(v) for v, _ in series.values()) - 0.1
ymax = max(max(v) for v, _ in series.values()) + 0.1
X = lambda x: L + (x - 0) / (max(xs) * 1.02) * (W - L - R)
Y = lambda y: T + (ymax - y) / (ymax - ymin) * (H - T - B)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">Default model: loss vs tokens seen (best validation {log["best_valid_loss"]:.3f} at {log["best_tokens_seen"] / 1e6:.0f}M)</text>']
for i in range(6):
    y = ymin + (ymax - ymin) * i / 5
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{Y(y):.1f}" y2="{Y(y):.1f}" stroke="#ddd"/><text x="{L - 5}" y="{Y(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
for i in range(6):
    x = max(xs) * i / 5
    out.append(f'<text x="{X(x):.1f}" y="{H - B + 18}" text-anchor="middle">{x:.0f}M</text>')
out.append(f'<text x="{W / 2}" y="{H - 10}" text-anchor="middle">tokens seen</text>')
out.append(f'<text x="15" y="{H / 2}" transform="rotate(-90 15 {H / 2})" text-anchor="middle">cross-entropy (nats/token)</text>')
bx = X(log["best_tokens_seen"] / 1e6)
out.append(f'<line x1="{bx:.1f}" x2="{bx:.1f}" y1="{T}" y2="{H - B}" stroke="#999" stroke-dasharray="4 3"/>')
for k, (name, (ys, color)) in enumerate(series.items()):
    path = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in zip(xs, ys))
    out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
    out.append(f'<line x1="{W - 190}" x2="{W - 170}" y1="{T + 20 + 16 * k}" y2="{T + 20 + 16 * k}" stroke="{color}" stroke-width="2"/><text x="{W - 165}" y="{T + 24 + 16 * k}">{name}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out))
