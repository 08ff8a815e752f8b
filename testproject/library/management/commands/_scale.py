"""``manage.py bench --scale``: batch loading against Django's own prefetch, at
10^2, 10^4 and 10^5 owners, each with an author of its own.

For each size and method: the queries of one call of each side, the median
time ratio ours / Django over a few rounds (sides alternating), and the memory
the loaded answers keep per owner (``tracemalloc``, measured apart from the
timing), ours and Django's. A side that fails (PostgreSQL refuses more than
65,535 parameters with server-side binding) is reported as such.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import django
from django.db import connection, models
from django.db.models import Prefetch, prefetch_related_objects
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext

import belongsto_ext
from testproject.library.models import Author, Book, Publisher

SCOPE = "bestselling"
Call = Callable[[], Any]


def scale_table(owners: list[int], rounds: int = 3) -> str:
    """The --scale table, one line per (owners, method)."""
    publisher = Publisher.objects.create(name="scale")
    lines = [("owners", "method", "queries ours / Django", "time ours/Django", "kept per owner")]
    made = 0
    for count in sorted(owners):
        _add_books(publisher, count - made)
        made = count
        queryset = Book.objects.filter(publisher=publisher).order_by("pk")
        for method, ours, theirs in _methods(queryset):
            lines.append((f"{count:,}", method, *_measure(ours, theirs, rounds, count)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [
        f"belongsto_ext bench --scale: Django {django.get_version()}, {connection.vendor}"
        + (
            ", server-side binding"
            if connection.settings_dict["OPTIONS"].get("server_side_binding")
            else ""
        )
        + f", {rounds} rounds, wall time, memory kept by the loaded answers (tracemalloc)"
    ]
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _add_books(publisher: Publisher, count: int) -> None:
    """``count`` more books, each by an author of its own, every second a bestseller."""
    for start in range(0, count, 5000):
        size = min(5000, count - start)
        authors = Author.objects.bulk_create(
            [Author(name=f"scale {start + i}", bestseller=(i % 2 == 0)) for i in range(size)]
        )
        Book.objects.bulk_create(
            [Book(title=f"scale {a.pk}", author=a, publisher=publisher) for a in authors]
        )


class _Side:
    """One side of a method: ``prepare()`` (untimed) returns the call to time."""

    def __init__(self, prepare: Callable[[], Call]) -> None:
        self.prepare = prepare


def _methods(queryset: models.QuerySet) -> list[tuple[str, _Side, _Side]]:
    bestselling = Author.bestselling.all()

    def ours_prefetch() -> Call:
        loaded = list(queryset.all())  # a fresh clone: fresh instances
        return lambda: belongsto_ext.prefetch(loaded, "author", scope=SCOPE)

    def django_prefetch() -> Call:
        loaded = list(queryset.all())  # a fresh clone: fresh instances
        return lambda: prefetch_related_objects(loaded, Prefetch("author", queryset=bestselling))

    def ours_scoped_prefetch() -> Call:
        return lambda: list(
            queryset.prefetch_related(belongsto_ext.ScopedPrefetch("author", scope=SCOPE))
        )

    def django_queryset_prefetch() -> Call:
        return lambda: list(queryset.prefetch_related(Prefetch("author", queryset=bestselling)))

    methods = [
        ("prefetch()", _Side(ours_prefetch), _Side(django_prefetch)),
        ("ScopedPrefetch", _Side(ours_scoped_prefetch), _Side(django_queryset_prefetch)),
    ]
    if django.VERSION >= (6, 1):

        def ours_fetch_peers() -> Call:
            loaded = list(queryset.fetch_mode(models.FETCH_PEERS))  # type: ignore[attr-defined, unused-ignore]
            return lambda: loaded[0].get_author(scope=SCOPE)

        methods.append(("FETCH_PEERS", _Side(ours_fetch_peers), _Side(django_prefetch)))
    return methods


def _measure(ours: _Side, theirs: _Side, rounds: int, owners: int) -> tuple[str, str, str]:
    """(queries ours / Django, median time ratio, kept memory per owner ours / Django)."""
    queries: list[int | str] = []
    for side in (ours, theirs):
        call = side.prepare()
        try:
            with CaptureQueriesContext(connection) as ctx:
                call()
        except DatabaseError as exc:
            queries.append(f"fails ({type(exc).__name__})")
        else:
            queries.append(len(ctx.captured_queries))
    if any(isinstance(count, str) for count in queries):
        # Nothing to compare with: only the side that works is reported.
        alone = "-" if isinstance(queries[0], str) else f"{_kept(ours) / owners:.0f} B / -"
        return f"{queries[0]} / {queries[1]}", "-", alone
    ratios = []
    for i in range(rounds):
        times = {}
        for name, side in (("ours", ours), ("theirs", theirs))[:: 1 if i % 2 == 0 else -1]:
            call = side.prepare()
            gc.collect()
            start = time.perf_counter_ns()
            call()
            times[name] = time.perf_counter_ns() - start
        ratios.append(times["ours"] / times["theirs"])
    kept = [_kept(side) / owners for side in (ours, theirs)]
    return (
        f"{queries[0]} / {queries[1]}",
        f"{statistics.median(ratios):.3f}",
        f"{kept[0]:.0f} B / {kept[1]:.0f} B ({kept[0] / kept[1]:.2f}x)",
    )


def _kept(side: _Side) -> int:
    """Bytes the call leaves allocated while its result (and the owners) live.

    For prefetch() and FETCH_PEERS the owners exist before the call: that is
    the memory the loaded answers keep. A prefetch_related() call makes its
    owners too: that is owners and answers, on both sides alike.
    """
    call = side.prepare()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        result = call()  # noqa: F841 (kept alive until the snapshot)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))
