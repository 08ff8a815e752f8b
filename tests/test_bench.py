"""The ``bench`` management command: its table and its ``--check`` verdict.

Tiny runs only: these tests check what the command reports, never how fast
anything is. One run of the command (its query counts) is in the default run;
the other runs are marked ``bench`` (``python -m pytest -m bench``; CI runs them once).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

# The async rows query from another thread: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
TINY = ["--rounds", "1", "--iterations", "1", "--owners", "3", "--models", "2", "--rows", "10"]
ROWS = {
    "book.author_id = key (x2)",
    "loop over 1000 books, book.author (fetch='peers' / prefetch_related)",
    "get_author(), caches cleared",
    "get_author() on a null FK",
    "set_author(pk)",
    "set_author(obj)",
    "create_author(**v)",
    "get_target(), caches cleared",
    "set_target(obj)",
    "set_target(Model, pk)",
    "create_target(Model, **v)",
    "prefetch over 3 comments",
    "scoped get over 3 owners",
    "aget_author(), caches cleared",
    "aset_author(pk)",
    "aset_author(obj)",
    "acreate_author(**v)",
    "class creation, 2 models",
    "load 10 owners, list(qs)",
}
# counter_cache= and touch= (kept by the database's triggers): (ours, hand-written)
# queries per operation, the same for both relations and both backends. The
# hand-written side's transaction counts its BEGIN and COMMIT; ours reads a cached
# target's new counter/timestamp back with one SELECT.
KEPT = {
    "create(book=obj)": (2, 4),  # INSERT + SELECT / INSERT + UPDATE
    # set_<name>() is one transaction: UPDATE / UPDATE + UPDATE of both books.
    "set_book(pk)": (3, 4),
    "book = obj; save()": (2, 4),  # UPDATE + SELECT / UPDATE + UPDATE of both books
    "instance.delete()": (1, 4),  # DELETE / DELETE + UPDATE
    # Both in a transaction: INSERT, UPDATE + SELECT / INSERT, UPDATE, UPDATE of both books.
    "create_book(**v)": (5, 5),
    "update() 1000 to another book": (1, 4),  # UPDATE / UPDATE + UPDATE of both books
    # Django's transaction around both, DELETE / SELECT per book, DELETE, UPDATE.
    "QuerySet.delete() 1000 over 10 books": (3, 5),
}
# The INSERT batches depend on the backend's and Django's parameter limit, and Django
# puts more than one statement in a transaction; by hand: the INSERTs and one UPDATE,
# in a transaction.
BULK_CREATE = "bulk_create() 1000 over 10 books"
KEPT_ROWS = {
    f"{name}, {what}" for name in [*KEPT, BULK_CREATE] for what in ("counter_cache", "touch")
}
ROWS |= KEPT_ROWS
LINE = re.compile(r"^(?P<name>.+?) \(x\d+\)\s+(?P<ours>\d+) / (?P<hand>\d+)\s")


def bench(*args: str) -> str:
    """Run the command on pytest-django's test database; return its output."""
    out = io.StringIO()
    call_command("bench", "--current-db", *TINY, *args, stdout=out)
    return out.getvalue()


def query_columns(output: str) -> dict[str, tuple[int, int]]:
    return {
        m["name"]: (int(m["ours"]), int(m["hand"]))
        for m in map(LINE.match, output.splitlines())
        if m
    }


def test_every_row_costs_as_many_queries_as_the_hand_written_code() -> None:
    """As many, or for counter_cache=/touch= (one statement where the hand-written
    code needs a transaction of two or three) no more, as pinned here."""
    queries = query_columns(bench())

    assert set(queries) == ROWS
    for name, (ours, hand) in queries.items():
        if name in KEPT_ROWS:
            assert ours <= hand, name
        else:
            assert ours == hand, name
    for what in ("counter_cache", "touch"):
        for name, counts in KEPT.items():
            assert queries[f"{name}, {what}"] == counts, name
        ours, hand = queries[f"{BULK_CREATE}, {what}"]
        inserts = 1 if ours == 1 else ours - 2  # without Django's BEGIN and COMMIT
        assert hand == inserts + 3
    assert queries["get_author(), caches cleared"] == (1, 1)
    assert queries["get_author() on a null FK"] == (0, 0)
    assert queries["book.author_id = key (x2)"] == (0, 0)
    # The books, and their 100 authors in one query: as prefetch_related().
    assert queries["loop over 1000 books, book.author (fetch='peers' / prefetch_related)"] == (2, 2)
    assert queries["scoped get over 3 owners"] == (1, 1)
    assert queries["class creation, 2 models"] == (0, 0)
    assert queries["get_target(), caches cleared"] == (1, 1)
    # One transaction each side (Django logs its BEGIN and COMMIT): the UPDATE, and
    # for a key the check that its row exists.
    assert queries["set_target(obj)"] == (1 + TX, 1 + TX)
    assert queries["set_target(Model, pk)"] == (2 + TX, 2 + TX)
    assert queries["prefetch over 3 comments"] == (2, 2)  # a book query and an author query


TX = 2  # BEGIN and COMMIT, which Django logs as queries


@pytest.mark.bench
def test_check_passes_when_every_target_is_met() -> None:
    output = bench(
        "--check", "--max-ratio", "1e9", "--max-extra-ns", "1e12", "--max-class-ratio", "1e9"
    )

    assert set(query_columns(output)) == ROWS


@pytest.mark.bench
def test_check_names_each_missed_target() -> None:
    with pytest.raises(CommandError) as excinfo:
        bench(
            "--check", "--max-ratio", "0.0001", "--max-class-ratio", "1e9", "--max-extra-ns", "1e12"
        )

    message = str(excinfo.value)
    assert excinfo.value.returncode == 1  # only time targets missed
    assert message.startswith("missed targets:")
    for name in ROWS - {"get_author() on a null FK", "class creation, 2 models"}:
        assert f"{name}: ratio " in message
    assert "get_author() on a null FK" not in message
    assert "class creation" not in message


@pytest.mark.bench
def test_without_check_a_missed_target_is_only_reported() -> None:
    output = bench("--max-ratio", "0.0001")

    assert set(query_columns(output)) == ROWS


@pytest.mark.bench
def test_command_line_run_uses_its_own_database_and_exits_non_zero_on_a_miss(
    tmp_path: Path,
) -> None:
    """``manage.py bench`` needs no setup, leaves the configured database alone, and
    ``--check`` makes the process fail naming the missed target."""
    configured = tmp_path / "untouched.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{configured}"}

    proc = subprocess.run(
        [
            sys.executable,
            str(MANAGE),
            "bench",
            *TINY,
            "--check",
            "--max-class-ratio",
            "0.0001",
            "--max-ratio",
            "1e9",
            "--max-extra-ns",
            "1e12",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert proc.returncode == 1, proc.stderr
    assert "missed targets:" in proc.stderr
    assert "class creation, 2 models: ratio" in proc.stderr
    assert set(query_columns(proc.stdout)) == ROWS
    assert not configured.exists()


def test_a_query_count_miss_exits_2_ahead_of_time_misses() -> None:
    """CI fails on exit 2 (query counts are exact) and only reports exit 1 (timings)."""
    from testproject.library.management.commands import bench as module

    def call() -> None:
        return None

    row = module.Row("made-up row", "db", call, call)
    result = module.Result(row, 1, 1, (2, 1), rounds=[(1, 1)])
    command = module.Command()
    queries, times = command._missed(
        [result], {"max_ratio": 1e9, "max_extra_ns": 1e12, "max_class_ratio": 1e9}
    )
    assert queries == ["made-up row: 2 queries, hand-written 1"]
    assert times == []


def test_a_kept_row_may_cost_fewer_queries_never_more_and_has_its_own_target() -> None:
    """The counter_cache=/touch= rows: fewer queries than by hand pass, more are a
    query miss; their own time target applies unless --max-ratio replaces it."""
    from testproject.library.management.commands import bench as module

    def call() -> None:
        return None

    def result(name: str, queries: tuple[int, int], fewer: bool) -> Any:
        row = module.Row(name, "db", call, call, max_ratio=0.6, fewer_queries=fewer)
        return module.Result(row, 1, 1, queries, rounds=[(7, 10)])

    results = [
        result("fewer", (1, 4), True),
        result("more", (5, 4), True),
        result("fewer, not allowed", (1, 4), False),
    ]
    command = module.Command()
    options: dict[str, Any] = {"max_ratio": None, "max_extra_ns": 1e12, "max_class_ratio": 1e9}

    queries, times = command._missed(results, options)

    assert queries == [
        "more: 5 queries, hand-written 4",
        "fewer, not allowed: 1 queries, hand-written 4",
    ]
    assert times == [
        f"{name}: ratio 0.700 (target <= 0.60)" for name in ("fewer", "more", "fewer, not allowed")
    ]
    assert command._missed(results, {**options, "max_ratio": 1.0})[1] == []


def test_both_sides_of_the_kept_rows_keep_their_counters() -> None:
    """The hand-written side updates its books' counters as the triggers update
    ours: after a call of each side of each row, no counter is off."""
    from django.db import connection

    from belongsto_ext.counters import counter_drift
    from testproject.library.management.commands.bench import _kept_rows
    from testproject.library.models import Review

    with _kept_rows(connection.vendor) as rows:
        for row in rows:
            for call, setup in zip((row.ours, row.theirs), row.setup, strict=True):
                for _ in range(2):
                    if setup is not None:
                        setup(1)
                    call()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM bench_plainbook b WHERE b.reviews_count <> "
                "(SELECT count(*) FROM bench_plainreview r WHERE r.book_id = b.id)"
            )
            assert cursor.fetchone() == (0,)
    assert list(counter_drift(Review, "book")) == []


def test_a_round_interleaves_the_sides_and_keeps_each_sides_fastest_run() -> None:
    """Runs alternate which side goes first; a side's slowest runs (the machine's
    other work) do not count, only its fastest."""
    from testproject.library.management.commands.bench import _round

    now = [0]
    order: list[str] = []
    ours_runs, theirs_runs = [50, 30, 90, 40], [70, 20, 60, 80]

    def side(name: str, durations: list[int]) -> Callable[[], None]:
        def call() -> None:
            order.append(name)
            now[0] += durations.pop(0)

        return call

    best = _round(
        side("ours", ours_runs), side("theirs", theirs_runs), 1, 4, lambda: now[0], collect=True
    )

    assert best == (30, 20)
    assert order == ["ours", "theirs", "theirs", "ours", "ours", "theirs", "theirs", "ours"]
