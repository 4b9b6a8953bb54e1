#!/usr/bin/env bash
# Flash runs end to end on the default model: the MLP read from a flash image through a DRAM
# budget. Checks what a user relies on: the measured peak RSS stays within the budget, dense
# streaming scores the dense model's perplexity, the emulated flash bandwidth is never exceeded,
# and DIP-CA reads less from flash than DIP at the same budget.
set -euo pipefail
DIP="$1"
WORK="$2"
RSS_CHECK="${3:-rss}"  # no-rss: sanitizer builds, whose RSS is mostly shadow memory
export RSS_CHECK
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
M="$ROOT/models/default.gguf"
TEXT="$ROOT/models/heldout-test.txt"
rm -rf "$WORK" && mkdir -p "$WORK"
"$DIP" convert "$M" "$WORK/default.dipflash" --flash 2>/dev/null

dense=$("$DIP" perplexity -m "$M" -f "$TEXT" -c 128 --chunks 3 --json 2>/dev/null | tail -n 1)
echo "$dense" > "$WORK/dense.json"
"$DIP" perplexity -m "$M" -f "$TEXT" -c 128 --chunks 3 --json --flash "$WORK/default.dipflash" --mlp-cache 25% \
  2>"$WORK/stream.log" | tail -n 1 > "$WORK/stream.json"
python3 - "$WORK/dense.json" "$WORK/stream.json" <<'PY'
import json, os, sys
d, s = (json.load(open(p)) for p in sys.argv[1:3])
f = s["flash"]
assert abs(s["ppl"] / d["ppl"] - 1) < 1e-3, f"dense streaming ppl {s['ppl']} != dense {d['ppl']}"
if os.environ["RSS_CHECK"] == "rss":
    assert f["within_budget"] and f["peak_rss"] <= f["budget"], f"peak RSS {f['peak_rss']} over the budget {f['budget']} (process included)"
assert 0.2 < f["hit_rate"] < 0.3, f"dense streaming through a 25% cache hits {f['hit_rate']}"
assert f["flash_bytes_per_token"] > 0
PY

for m in dip dip-ca; do
  "$DIP" generate -m "$M" -p "Once upon a time" -n 40 --seed 3520188881 --ignore-eos --json --method $m --mlp-density 0.5 \
    --flash "$WORK/default.dipflash" --mlp-cache 50% --flash-bw 40MB/s 2>"$WORK/$m.log" > "$WORK/$m.out"
  tail -n 1 "$WORK/$m.out" > "$WORK/$m.json"
done
python3 - "$WORK/dip.json" "$WORK/dip-ca.json" <<'PY'
import json, os, sys
a, b = (json.load(open(p))["flash"] for p in sys.argv[1:3])
for r in (a, b):
    if os.environ["RSS_CHECK"] == "rss":
        assert r["within_budget"], r
    # The emulated flash delivers at most 40 MB/s: bytes per token x tokens/s stays below it.
    rate = r["flash_bytes_per_token"] * r["tokens_per_second"]
    assert rate <= 40e6 * 1.02, f"read {rate/1e6:.1f} MB/s through a 40 MB/s flash"
    assert r["flash_throttle_s"] > 0
assert b["hit_rate"] > a["hit_rate"] + 0.1, (a["hit_rate"], b["hit_rate"])
assert b["flash_bytes_per_token"] < 0.8 * a["flash_bytes_per_token"]
PY

# Next-layer prefetch: within the budget, bundles read ahead and mostly used, more hits. (The
# text may differ: hits are summed first, so another cache content is another order of the
# sums, and greedy decoding follows near-ties; tests/flash compares the logits.)
"$DIP" generate -m "$M" -p "Once upon a time" -n 40 --seed 3520188881 --ignore-eos --json --method dip --mlp-density 0.5 \
  --flash "$WORK/default.dipflash" --mlp-cache 50% --flash-prefetch on 2>"$WORK/pf.log" > "$WORK/pf.out"
python3 - "$WORK/dip.out" "$WORK/pf.out" <<'PY'
import json, os, sys
outs = [open(p).read().rstrip("\n").split("\n") for p in sys.argv[1:3]]
a, b = (json.loads(o[-1]) for o in outs)
f = b["flash"]
if os.environ["RSS_CHECK"] == "rss":
    assert f["within_budget"], f
assert f["prefetch"] and f["prefetch_bundles_per_token"] > 0, f
assert f["prefetch_used"] > 0.5, f["prefetch_used"]
assert f["up_hit_rate"] >= a["flash"]["up_hit_rate"], (f["up_hit_rate"], a["flash"]["up_hit_rate"])
PY
# Reads joined across gaps (--flash-gap auto: the device's break-even gap, probed once and
# cached beside the image): the same text and hits as exact reads, fewer requests, the report's
# gap the cached probe's; the second run reads the cache instead of measuring again.
rm -f "$WORK/default.dipflash.probe.json"
for g in 0 auto auto; do
  "$DIP" generate -m "$M" -p "Once upon a time" -n 24 --temp 0 --ignore-eos --json --method dip-ca --mlp-density 0.5 \
    --gamma 0.5 --flash "$WORK/default.dipflash" --mlp-cache 50% --flash-gap $g 2>"$WORK/gap-$g.log" > "$WORK/gap-$g.out"
done
python3 - "$WORK/gap-0.out" "$WORK/gap-auto.out" "$WORK/default.dipflash.probe.json" <<'PY'
import json, sys
outs = [open(p).read().rstrip("\n").split("\n") for p in sys.argv[1:3]]
probe = json.load(open(sys.argv[3]))
(t0, r0), (t1, r1) = ((o[:-1], json.loads(o[-1])) for o in outs)
a, b = r0["flash"], r1["flash"]
assert t0 == t1, "joined reads changed the text"
assert a["flash_gap"] == 0 and b["flash_gap"] == probe["gap_bytes"], (a["flash_gap"], b["flash_gap"], probe["gap_bytes"])
assert abs(b["flash_probe"]["request_us"] - probe["request_us"]) <= 1e-9 * probe["request_us"], (b["flash_probe"], probe)
assert b["flash_probe"]["note"].startswith("flash probe from"), b["flash_probe"]["note"]  # the second auto run
assert a["hit_rate"] == b["hit_rate"], (a["hit_rate"], b["hit_rate"])
assert b["flash_requests_per_token"] <= a["flash_requests_per_token"]
assert b["flash_bytes_per_token"] >= a["flash_bytes_per_token"]
if b["flash_gap"] > 0:
    assert b["flash_requests_per_token"] < a["flash_requests_per_token"], (a["flash_requests_per_token"], b["flash_requests_per_token"])
PY
# An adapter applied at run time: resident before the run measures the process, so the budget
# grows by the adapter once (not twice: measured process + its bytes), and the run stays in it.
for l in none lora; do
  extra=()
  if [ $l = lora ]; then extra=(--lora "$ROOT/models/default-recover-dip-ca-0.5.gguf"); fi
  "$DIP" generate -m "$M" -p "Once upon a time" -n 8 --temp 0 --ignore-eos --json --method dip-ca --mlp-density 0.5 \
    --gamma 0.5 --flash "$WORK/default.dipflash" --mlp-cache 25% "${extra[@]}" 2>"$WORK/lora-$l.log" | tail -n 1 > "$WORK/lora-$l.json"
done
python3 - "$WORK/lora-none.json" "$WORK/lora-lora.json" <<'PY'
import json, os, sys
a, b = (json.load(open(p))["flash"] for p in sys.argv[1:3])
adapter = b["resident_weights"] - a["resident_weights"]
assert adapter > 1e6, adapter
assert b["cache_bytes"] == a["cache_bytes"], (a["cache_bytes"], b["cache_bytes"])
if os.environ["RSS_CHECK"] == "rss":
    growth = b["budget"] - a["budget"]
    assert 0.8 * adapter < growth < 1.3 * adapter, f"budget grew {growth} for a {adapter}-byte adapter"
    assert b["within_budget"], b
PY
echo "flash runs: ok"
