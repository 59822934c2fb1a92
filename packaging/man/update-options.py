#!/usr/bin/env python3
"""Rewrites the OPTIONS section of turnserver.1 from `turnserver -h`.

Usage: packaging/man/update-options.py [path/to/turnserver]

The option list of the man page is the server's own help text, so the two
never disagree; tests/packaging.rs checks that every long option of `-h` is
in the page. Only the lines between `.\\" BEGIN OPTIONS` and `.\\" END OPTIONS`
change; everything else in turnserver.1 is written by hand.
"""
import pathlib
import re
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
BIN = sys.argv[1] if len(sys.argv) > 1 else str(HERE.parent.parent / "target/release/turnserver")
PAGE = HERE / "turnserver.1"


def roff(text):
    text = text.replace("\\", "\\\\").replace("-", "\\-")
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


def main():
    help_text = subprocess.run([BIN, "-h"], capture_output=True, text=True, check=False)
    lines = (help_text.stdout + help_text.stderr).splitlines()
    out = []
    for line in lines:
        if not line.startswith(" ") or not line.strip().startswith("-"):
            continue
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if len(parts) != 2:
            continue
        left, desc = parts
        # "-d, --name <arg>", "--name[=<arg>]", "-c <file>"
        m = re.match(r"^(?:(-\w), )?(--?[\w-]+)(.*)$", left)
        if not m:
            continue
        short, long_, arg = m.groups()
        names = []
        if short:
            names.append("\\fB" + roff(short) + "\\fR")
        names.append("\\fB" + roff(long_) + "\\fR")
        head = ", ".join(names)
        if arg.strip():
            head += ("" if arg.startswith("[") else " ") + "\\fI" + roff(arg.strip()) + "\\fR"
        out.append(".TP")
        out.append(head)
        out.append(roff(desc.strip()))
    page = PAGE.read_text()
    begin = '.\\" BEGIN OPTIONS\n'
    end = '.\\" END OPTIONS\n'
    i, j = page.index(begin) + len(begin), page.index(end)
    PAGE.write_text(page[:i] + "\n".join(out) + "\n" + page[j:])
    print(f"{PAGE}: {len(out) // 3} options")


if __name__ == "__main__":
    main()
