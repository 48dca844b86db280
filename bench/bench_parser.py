"""The query parser's cost against the length of the query: today's linear parser beside the pattern it replaced.

    python -m bench.bench_parser            # 1k, 10k and 100k characters (the old pattern up to 32k: it is quadratic)
    python -m bench.bench_parser --write    # also update section 10 of docs/benchmarks.md

``searchcore.models.words.parse_query`` refuses a query longer than ``searchcore.inputs.MAX_QUERY_CHARS`` before reading
it; this measures the parsing itself (``limit=None``), to show that even without the limit its cost is linear. The
baseline is the parser as it was before issue 20 (:func:`old_parse`, copied from git with its term pattern
``_OLD_TERM``), which matched that pattern against each token. Inputs: a run of digits (one token, the attack that
stalled the server), and words with weights (``2:cat + sofa - 0.5:dog …``, many short tokens). Medians of
interleaved rounds.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from . import common

# the parser's term pattern before issue 20: `\d*\.?\d+` then `.+` backtrack quadratically over a run of digits
_OLD_TERM = re.compile(r"^(?:(?P<weight>[-+]?\d*\.?\d+)\s*:)?(?P<word>.+)$")
_TOKENS = re.compile(r"\+|-(?=\s|$)|[^\s,+]+")
NOT_RUN = "not run (quadratic: about 10× its 32k time)"
OLD_MAX_CHARS = 32_000  # the old parser takes ~11 s at 32k digits; 100k would take ~100 s per round


def old_parse(text: str) -> list[tuple[float, str]]:
    """The parser before issue 20 (``git show e7a2d82~1:searchcore/words.py``: the module's path then), its checks
    on the result left out."""
    tokens = _TOKENS.findall(text.replace("\u2212", "-"))
    terms: list[tuple[float, str]] = []
    sign = 1.0
    for token in tokens:
        if token in ("+", "-"):
            sign = -1.0 if token == "-" else 1.0
            continue
        if token[0] in "+-" and not token[1:2].isdigit():
            sign, token = (-1.0 if token[0] == "-" else 1.0), token[1:]
        match = _OLD_TERM.match(token)
        if match is None or not match.group("word").strip(":"):
            continue
        weight = float(match.group("weight")) if match.group("weight") else 1.0
        terms.append((sign * weight, match.group("word").strip(":").lower()))
        sign = 1.0
    return terms


def inputs(n: int) -> dict[str, str]:
    words = ("2:cat + sofa - 0.5:dog " * (n // 22 + 1))[:n]
    return {"digits": "1" * n, "words": words}


def run(sizes: list[int], reps: int) -> dict[str, Any]:
    from searchcore.models.words import parse_query

    def ours(text: str) -> None:
        with contextlib.suppress(ValueError):  # a query the parser refuses has been read all the same
            parse_query(text, limit=None)

    out: dict[str, Any] = {}
    for n in sizes:
        for kind, text in inputs(n).items():
            cases = {"ours": lambda text=text: ours(text)}
            if n <= OLD_MAX_CHARS or kind == "words":  # only a run of digits makes the old parser quadratic
                cases["old"] = lambda text=text: bool(old_parse(text)) and None
            common.log(f"{kind}, {n:,} characters")
            times = common.interleaved(cases, reps, warmup=1)
            out[f"{kind}/{n}"] = {name: common.median(t) for name, t in times.items()}
    return out


def render(result: dict[str, Any], sizes: list[int], info: dict[str, Any]) -> str:
    rows = []
    for kind in ("digits", "words"):
        base = result[f"{kind}/{sizes[0]}"]["ours"]
        for n in sizes:
            row = result[f"{kind}/{n}"]
            old = row.get("old")
            rows.append([kind, f"{n:,}", f"{common.fmt(row['ours'] * 1e3)} ms",
                         f"{common.fmt(row['ours'] / base / (n / sizes[0]), 2)}",
                         f"{common.fmt(old * 1e3)} ms" if old is not None else NOT_RUN,
                         f"{common.fmt(old / row['ours'])}×" if old is not None else "—"])
    return (f"Command: `{common.command('bench.bench_parser', ['--write'])}`. {common.machine_line(info)}\n\n"
            "`parse_query(text, limit=None)` (the app refuses anything over 300 characters before parsing; this is "
            "the cost it would have without that limit) against the parser it replaced (the old term pattern), on "
            "a run of digits (one token: the query that stalled the server) and on weighted words (many tokens). "
            "Medians of interleaved rounds. *Per character* is the time per character relative to "
            f"{sizes[0]:,} characters: 1 means linear.\n\n"
            + common.table(["input", "characters", "ours", "ours per character (×)", "old parser", "old / ours"],
                           rows))


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    sizes = [1_000, 10_000, 32_000] if args.quick else [1_000, 10_000, 32_000, 100_000]
    reps = args.reps or (3 if args.quick else 7)
    info = common.machine()
    result = run(sizes, reps)
    body = render(result, sizes, info)
    print(body)
    if args.write:
        common.write_section("bench_parser", body, "10. Query parser")
    common.emit_json("bench_parser", {"sizes": sizes, "result": result})


if __name__ == "__main__":
    main()
