#!/usr/bin/env bash
# Sets up, then runs the main job on the default model (models/default.gguf, see
# models/MODEL_CARD.md): its description, a generation dense and with DIP, and perplexity on the
# start of the held-out test text, dense and with DIP / DIP-CA at MLP density 0.5 (with KL to
# dense, top-1 agreement and the modelled cache's hit rate); then the MLP on flash: a flash image
# read with O_DIRECT under a DRAM budget that holds half of the MLP, dense streaming against
# DIP-CA, each with its run report; last, the hardware simulator on DIP-CA's mask trace against dense
# streaming on an A18-like phone. Should the model file be missing, a random-weight model stands in.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
DIP=build/release/dip
MODEL=models/default.gguf
if [ ! -f "$MODEL" ]; then
  mkdir -p models/test
  MODEL=models/test/demo-llama-q8_0.gguf
  [ -f "$MODEL" ] || $DIP make-test-model "$MODEL" --arch llama --type q8_0 --n-embd 512 --n-layer 8 --n-ff 1536 --n-head 8 --n-head-kv 4
  echo "note: no trained default model yet; using random-weight $MODEL (its text is gibberish)" >&2
fi
echo "--- the model ---"
$DIP info "$MODEL" | sed -n 1,12p
echo "--- dense: a generation, then perplexity on the start of the held-out text ---"
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1
head -c 20000 models/heldout-test.txt > build/demo-heldout.txt
$DIP perplexity -m "$MODEL" -f build/demo-heldout.txt --ctx 512
echo "--- the same, reading half of the MLP weights per token (DIP, then DIP-CA with a 50% cache) ---"
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1 --method dip --mlp-density 0.5
$DIP perplexity -m "$MODEL" -f build/demo-heldout.txt --ctx 512 --method dip --mlp-density 0.5
$DIP perplexity -m "$MODEL" -f build/demo-heldout.txt --ctx 512 --method dip-ca --mlp-density 0.5 --gamma 0.5 --cache-fraction 0.5
echo "--- the MLP on flash: a DRAM budget of the resident part + 50% of the MLP columns, read per token from disk ---"
$DIP convert "$MODEL" build/demo.dipflash --flash
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1 --flash build/demo.dipflash --mlp-cache 50%
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1 --flash build/demo.dipflash --mlp-cache 50% \
  --method dip-ca --mlp-density 0.7 --gamma 0.5
echo "--- dense streaming and DIP-CA at density 0.5 through an emulated phone flash of 1 GB/s (--flash-bw) ---"
echo "(On this machine's disk a pruned token's reads are thousands of small requests and the disk's"
echo " request rate bounds them, so DIP-CA is slower than dense streaming there; where the flash's"
echo " bandwidth is the limit, the bytes DIP-CA does not read are time saved: density 0.5 reads a"
echo " third of dense streaming's bytes here, for +9% perplexity on this small model.)"
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1 --flash build/demo.dipflash --mlp-cache 50% \
  --flash-bw 1GB/s > /dev/null
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1 --flash build/demo.dipflash --mlp-cache 50% \
  --flash-bw 1GB/s --method dip-ca --mlp-density 0.5 --gamma 0.5 > /dev/null
echo "--- what an A18-like phone (60 GB/s DRAM, 1 GB/s flash) would gain: the simulator on DIP-CA's mask trace ---"
$DIP generate -m "$MODEL" -p "The President said" -n 64 --temp 0.8 --seed 1 --method dip-ca --mlp-density 0.7 --gamma 0.5 \
  --cache-fraction 0.5 --trace build/demo-dip-ca.trace > /dev/null
$DIP simulate -m "$MODEL" --device a18 --dram-size 0.0414 --density 1 | sed -n 1,5p
$DIP simulate -m "$MODEL" --device a18 --dram-size 0.0414 --trace build/demo-dip-ca.trace | sed -n 1,5p
