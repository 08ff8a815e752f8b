"""Count the CPU instructions one call of a benchmark row costs, ours and the
hand-written twin's, with valgrind's callgrind: a measure that does not move
with the load of a shared machine, for margins smaller than wall-clock noise.

    python manage.py instructions "set_author(pk)" --calls 2000

Each side runs in a process of its own under callgrind twice, with no calls and
with ``--calls`` calls after the same set-up and warm-up; the difference over
the calls is the cost of one call (SQLite in memory, as ``bench``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import setup_test_environment

from . import bench


class Command(BaseCommand):
    help = "Instructions per call of one bench row, ours and hand-written (callgrind)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "row", help='The row\'s name as bench prints it, e.g. "set_author(pk)".'
        )
        parser.add_argument("--calls", type=int, default=2000)
        parser.add_argument("--side", choices=["ours", "theirs"], help=argparse_hidden())

    def handle(self, *args: Any, **options: Any) -> None:
        if options["side"]:
            self._inner(options)
            return
        if shutil.which("valgrind") is None:
            raise CommandError("valgrind is not installed (apt-get install valgrind).")
        counts = {}
        for side in ("ours", "theirs"):
            zero, many = (self._count(options, side, n) for n in (0, options["calls"]))
            counts[side] = (many - zero) / options["calls"]
        ratio = counts["ours"] / counts["theirs"]
        self.stdout.write(
            f"{options['row']}: ours {counts['ours']:,.0f}, hand-written "
            f"{counts['theirs']:,.0f} instructions per call: {ratio:.3f}x"
        )

    def _count(self, options: dict[str, Any], side: str, calls: int) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "callgrind.out")
            command = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, sys.argv[0], "instructions", options["row"],
                "--side", side, "--calls", str(calls),
            ]  # fmt: skip
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise CommandError(result.stderr[-2000:])
            match = re.search(r"Collected : (\d+)", result.stderr)
            if match is None:
                raise CommandError(f"no instruction count in callgrind's output:\n{result.stderr}")
            return int(match.group(1))

    def _inner(self, options: dict[str, Any]) -> None:
        setup_test_environment()
        old = connection.creation.create_test_db(verbosity=0)
        try:
            with bench._any_rows(3) as any_rows:
                rows = {row.name: row for row in [*bench._sync_rows(3), *any_rows]}
                if options["row"] not in rows:
                    raise CommandError(f"no row {options['row']!r}; rows: {', '.join(rows)}")
                row = rows[options["row"]]
                call = row.ours if options["side"] == "ours" else row.theirs
                for _ in range(50):  # warm-up: caches, first-use imports
                    call()
                for _ in range(options["calls"]):
                    call()
        finally:
            connection.creation.destroy_test_db(old, verbosity=0)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS
