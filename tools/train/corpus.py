"""The corpus split files that tools/corpus/build_corpus.sh writes, for the training tools."""
import json
import lzma
import os


def read_docs(corpus, split):
    """The texts of one split (train, valid, test): SPLIT.jsonl, or SPLIT.jsonl.xz."""
    p = os.path.join(corpus, split + ".jsonl")
    f = lzma.open(p + ".xz", "rt", encoding="utf-8") if os.path.exists(p + ".xz") else open(p, encoding="utf-8")
    with f:
        return [json.loads(line)["text"] for line in f]
