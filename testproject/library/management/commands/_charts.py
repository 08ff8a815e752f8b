"""Charts of ``manage.py bench --scale``: ``bench --scale --charts DIR`` draws one PNG per run
into DIR, from the table it prints (docs/performance.md shows them, from docs/_static/).

Each PNG has two panels over the owner counts (log scale): the time of each method relative
to Django's own prefetch of the same scope (below 1: faster), and the memory the loaded
answers keep per owner, ours and Django's. Where Django's prefetch fails (a statement past the
database's parameter limit), its side is marked with a cross and has no ratio.

matplotlib is a development dependency (the ``docs`` extra), imported only to draw. A table
saved from an earlier run is drawn again with::

    python -m testproject.library.management.commands._charts OUTPUT.txt... --out DIR
"""

from __future__ import annotations

import argparse
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = re.compile(r"^belongsto_ext bench --scale: (?P<what>.+?), \d+ rounds?,")
ROW = re.compile(
    r"^(?P<owners>[\d,]+)\s+(?P<method>\S+)\s+(?P<ours>\d+) / (?P<theirs>\d+|fails \(\w+\))\s+"
    r"(?P<ratio>[\d.]+|-)\s+(?P<kept_ours>\d+) B / (?:(?P<kept_theirs>\d+) B|-)"
)


@dataclass
class Series:
    """One method's rows: owner count -> value; None where Django's side failed."""

    ratio: dict[int, float | None] = field(default_factory=dict)
    kept_ours: dict[int, float] = field(default_factory=dict)
    kept_theirs: dict[int, float | None] = field(default_factory=dict)


@dataclass
class Table:
    title: str  # "Django 6.1.3, postgresql, server-side binding"
    methods: dict[str, Series] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """``scale-postgresql-server-side-binding-django61``: the PNG's name."""
        parts = [p.strip() for p in self.title.split(",")]
        version = re.sub(r"^Django (\d+)\.(\d+).*", r"django\1\2", parts[0])
        words = [re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts[1:]]
        return "-".join(["scale", *words, version])


def parse(text: str) -> list[Table]:
    """The --scale tables in ``text`` (the output of one or more bench runs)."""
    tables: list[Table] = []
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            tables.append(Table(header["what"]))
            continue
        row = ROW.match(line)
        if row and tables:
            owners = int(row["owners"].replace(",", ""))
            series = tables[-1].methods.setdefault(row["method"], Series())
            series.ratio[owners] = None if row["ratio"] == "-" else float(row["ratio"])
            series.kept_ours[owners] = float(row["kept_ours"])
            theirs = row["kept_theirs"]
            series.kept_theirs[owners] = None if theirs is None else float(theirs)
    return [table for table in tables if table.methods]


def draw(text: str, directory: Path) -> list[Path]:
    """Draw each --scale table of ``text`` into ``directory``; return the PNGs' paths."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in parse(text):
        figure, (times, memory) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
        for i, (method, series) in enumerate(table.methods.items()):
            color = f"C{i}"
            owners = sorted(series.ratio)
            measured = [n for n in owners if series.ratio[n] is not None]
            times.plot(
                measured, [series.ratio[n] for n in measured], "o-", color=color, label=method
            )
            failed = [n for n in owners if series.ratio[n] is None]
            if failed:  # side by side, one cross per method
                shift = 1.12 ** (i - (len(table.methods) - 1) / 2)
                times.plot([n * shift for n in failed], [1.0] * len(failed), "x", color=color)
            memory.plot(owners, [series.kept_ours[n] for n in owners], "o-", color=color)
            kept = [n for n in owners if series.kept_theirs[n] is not None]
            memory.plot(kept, [series.kept_theirs[n] for n in kept], "s--", color=color)
        times.axhline(1.0, color="grey", linewidth=0.8)
        for fails_at in sorted(
            {n for s in table.methods.values() for n, r in s.ratio.items() if r is None}
        ):
            times.annotate(
                "Django\nfails",
                (fails_at, 1.0),
                xytext=(0, 8),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color="C3",
            )
        times.set(
            xscale="log",
            xlabel="owners",
            ylabel="time, ours / Django's prefetch",
            ylim=(0, max(1.2, *_ratios(table))),
        )
        times.set_title("time (x: Django's prefetch fails)", fontsize=10)
        times.legend(fontsize=8, loc="lower left")
        memory.set(xscale="log", xlabel="owners", ylabel="bytes kept per owner", ylim=(0, None))
        memory.set_title("memory (solid: ours, dashed: Django)", fontsize=10)
        figure.suptitle(f"bench --scale: {table.title}", fontsize=11)
        figure.tight_layout()
        path = directory / f"{table.slug}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths


def _ratios(table: Table) -> list[float]:
    return [r for s in table.methods.values() for r in s.ratio.values() if r is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description="Draw saved `bench --scale` tables.")
    parser.add_argument("outputs", nargs="+", type=Path, help="saved output of bench --scale")
    parser.add_argument("--out", type=Path, default=Path("docs/_static"), help="directory")
    args = parser.parse_args()
    for output in args.outputs:
        for path in draw(output.read_text(), args.out):
            print(path)


if __name__ == "__main__":
    main()
