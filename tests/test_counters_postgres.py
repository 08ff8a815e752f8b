"""Concurrent writers on PostgreSQL: counters moved by ``F()`` expressions lose
nothing. Eight threads move their own volumes between shared shelves, through
``set_shelf()`` and through a plain ``save()``; at the end every counter equals
``COUNT(*)`` of the volumes on its shelf, and every write touched its shelf.

Each thread has its own connection (Django opens one per thread) and closes it
when done; every thread must finish within TIME_LIMIT.
"""

from __future__ import annotations

import datetime
import random
import threading
from collections.abc import Callable

import pytest
from django.db import connection, models, transaction

from tests.helpers import run_threads
from tests.models import Library, Shelf, Volume

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason=f"concurrent writers need PostgreSQL; this run uses {connection.vendor}, "
        "which lets one connection write at a time",
    ),
]

THREADS = 8
VOLUMES = 3  # per thread
SHELVES = 5
ROUNDS = 40  # moves per thread
TIME_LIMIT = 120.0  # seconds for all threads together
OLD = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def test_concurrent_moves_keep_every_counter_exact(capsys: pytest.CaptureFixture[str]) -> None:
    libraries = [Library.objects.create(name=f"Library {i}") for i in range(2)]
    shelves = [
        Shelf.objects.create(name=f"Shelf {i}", library=libraries[i % 2]) for i in range(SHELVES)
    ]
    owned = [
        [Volume.objects.create(title=f"{t}-{i}", shelf=shelves[0]).pk for i in range(VOLUMES)]
        for t in range(THREADS)
    ]
    Shelf.objects.update(updated=OLD)
    Library.objects.update(updated=OLD)
    pks = [shelf.pk for shelf in shelves] + [None]  # None: off every shelf
    moves = {"set": 0, "save": 0, "atomic save": 0}
    lock = threading.Lock()

    def mover(seed: int, mine: list[int]) -> Callable[[], None]:
        def move() -> None:
            rng = random.Random(seed)
            volumes = [Volume.objects.get(pk=pk) for pk in mine]
            for _ in range(ROUNDS):
                volume = rng.choice(volumes)
                target = rng.choice(pks)
                how = rng.choice(list(moves))
                if how == "set":
                    volume.set_shelf(target)
                elif how == "save":
                    volume.shelf_id = target
                    volume.save()
                else:
                    with transaction.atomic():
                        volume.shelf_id = target
                        volume.title = f"moved to {target}"
                        volume.save()
                with lock:
                    moves[how] += 1

        return move

    errors = run_threads(TIME_LIMIT, [mover(t, owned[t]) for t in range(THREADS)])
    assert not errors, errors

    actual = dict(
        Volume.objects.filter(shelf__isnull=False)
        .values("shelf")
        .annotate(n=models.Count("pk"))
        .values_list("shelf", "n")
    )
    counters = dict(Shelf.objects.values_list("pk", "volumes_count"))
    assert counters == {pk: actual.get(pk, 0) for pk in counters}
    assert sum(counters.values()) == Volume.objects.filter(shelf__isnull=False).count()
    assert sum(moves.values()) == THREADS * ROUNDS
    # Every shelf was written to (ROUNDS moves over 5 shelves), so every one is touched,
    # and so is every library.
    assert not Shelf.objects.filter(updated=OLD).exists()
    assert not Library.objects.filter(updated=OLD).exists()
    with capsys.disabled():
        print(f"\n[counters] {THREADS} threads, {moves}, counters {counters}")
