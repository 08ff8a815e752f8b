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

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

# The async rows query from another thread: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
TINY = ["--rounds", "1", "--iterations", "1", "--owners", "3", "--models", "2", "--rows", "10"]
ROWS = {
    "get_author(), caches cleared",
    "get_author() on a null FK",
    "set_author(pk)",
    "set_author(obj)",
    "create_author(**v)",
    "set_book(pk), counter_cache",
    "set_book(pk), touch",
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
    queries = query_columns(bench())

    assert set(queries) == ROWS
    for name, (ours, hand) in queries.items():
        assert ours == hand, name
    assert queries["get_author(), caches cleared"] == (1, 1)
    assert queries["get_author() on a null FK"] == (0, 0)
    assert queries["scoped get over 3 owners"] == (1, 1)
    assert queries["class creation, 2 models"] == (0, 0)
    assert queries["get_target(), caches cleared"] == (1, 1)
    assert queries["set_target(obj)"] == (1, 1)
    assert queries["set_target(Model, pk)"] == (1, 1)
    assert queries["prefetch over 3 comments"] == (2, 2)  # a book query and an author query


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
