"""Concurrent writers on PostgreSQL, at each isolation level: the counting
triggers lose nothing and deadlock nowhere.

Eight threads move one SHARED pool of owners (volumes, slips and cards: every
thread re-reads and moves the same rows) between four shared shelves in two
libraries, through ``set_shelf()`` on a fresh and on a stale instance, a plain
``save()`` of a stale instance (an INSERT if its row was deleted), a ``save()``
inside ``transaction.atomic()`` after ``select_for_update()``,
``QuerySet.update()``, ``delete()`` and re-creation under the same key,
``objects.create()`` and ``create_shelf()``; and they save stale shelves, whose
stale counters the guard trigger replaces. Every write is of one row, the way
an application writes; a serialization failure or a deadlock is retried from
the start of the write (the application's retry loop), a bounded number of
times, and counted. Each isolation level is a run of its own, set per session
(``SET SESSION CHARACTERISTICS``), for autocommit statements and ``atomic()``
blocks alike.

A sampler thread reads, in one statement (one snapshot), every shelf's
counters beside the COUNT(*) of its owners, all through the run: a committed
snapshot has them equal, and none negative (``slips_count`` is a
PositiveIntegerField: PostgreSQL's CHECK refuses a negative value as well).
At the end every counter equals its count, every thread finished, every shelf
written to was touched no earlier than the last write's start, and at READ
COMMITTED no write met a deadlock. Each run prints what it committed and
retried.

The last test pins a deadlock between ``create_shelf()`` in a touched library
and a concurrent single-row move of the same volume.

Each thread has its own connection (Django opens one per thread) and closes it
when done; every run must finish within TIME_LIMIT.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ObjectDoesNotExist
from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connection,
    models,
    transaction,
)

from belongsto_ext import counter_drift
from tests.helpers import OLD, run_threads
from tests.markers import needs_a_session, needs_concurrent_writers
from tests.models import Card, Library, Shelf, Slip, Volume

pytestmark = [pytest.mark.django_db(transaction=True), needs_concurrent_writers]

THREADS = 8
SHELVES = 4
OWNERS = {Volume: 6, Slip: 3, Card: 3}  # the shared pool, per model
ROUNDS = 30  # writes per thread
RETRIES = 60  # attempts of one write before its thread gives up
TIME_LIMIT = 60.0  # seconds for all threads of one run together
SAMPLES = 5000  # at most, per run
LEVELS = ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]
# SQLSTATEs the application retries: serialization_failure, deadlock_detected.
RETRIED = {"40001": "serialization failure", "40P01": "deadlock"}
WAYS = [
    "set fresh",
    "set stale",
    "save",
    "atomic save",
    "queryset update",
    "delete",
    "create",
    "create_shelf",
    "shelf save",
]
TEXT = {Volume: "title", Slip: "note", Card: "note"}

# Counters beside their counts, in one statement.
SAMPLE_SQL = """
SELECT s.id, s.volumes_count,
       (SELECT count(*) FROM tests_volume v WHERE v.shelf_id = s.id),
       s.slips_count,
       (SELECT count(*) FROM tests_slip p WHERE p.shelf_id = s.id)
       + (SELECT count(*) FROM tests_card c WHERE c.shelf_id = s.id)
FROM tests_shelf s
"""


def retried(exc: BaseException) -> str | None:
    """What the retry loop calls ``exc``, or None if it is not one it retries."""
    if isinstance(exc, OperationalError):
        return RETRIED.get(getattr(exc.__cause__, "sqlstate", None) or "")
    return None


def lost_race(exc: BaseException) -> bool:
    """``exc`` is a race the application expects a write to lose: its row was
    deleted by another thread (not found, or an update_fields save of no row),
    or re-created under its key by another thread first."""
    if isinstance(exc, ObjectDoesNotExist):
        return True
    if isinstance(exc, IntegrityError):
        return getattr(exc.__cause__, "sqlstate", None) == "23505"  # unique_violation
    return isinstance(exc, DatabaseError) and "did not affect any rows" in str(exc)


def counts_by_shelf(model: type[models.Model]) -> dict[int, int]:
    return dict(
        model._base_manager.filter(shelf__isnull=False)
        .values("shelf")
        .annotate(n=models.Count("pk"))
        .values_list("shelf", "n")
    )


@needs_a_session
@pytest.mark.parametrize("level", LEVELS)
def test_concurrent_writes_keep_every_counter_exact(
    level: str, capsys: pytest.CaptureFixture[str]
) -> None:
    libraries = [Library.objects.create(name=f"Library {i}") for i in range(2)]
    shelves = [
        Shelf.objects.create(name=f"Shelf {i}", library=libraries[i % 2]) for i in range(SHELVES)
    ]
    pool: list[tuple[type[models.Model], int]] = [
        (model, model.objects.create(shelf=shelves[i % SHELVES], **{TEXT[model]: "start"}).pk)
        for model, n in OWNERS.items()
        for i in range(n)
    ]
    Shelf.objects.update(updated=OLD)
    Library.objects.update(updated=OLD)
    targets = [shelf.pk for shelf in shelves] + [None]  # None: off every shelf
    start = datetime.datetime.now(datetime.timezone.utc)

    lock = threading.Lock()
    done = threading.Event()
    running = [THREADS]
    ways: Counter[str] = Counter()  # writes that committed, by way
    lost: Counter[str] = Counter()  # writes that lost an expected race, by way
    retries: Counter[tuple[str, str]] = Counter()  # (what, way) -> retries
    most = [1]  # the most attempts one write took
    # Shelf pk -> the latest start (before its first attempt) of a committed
    # write that moved a touching owner onto it.
    last_write: dict[int, datetime.datetime] = {}
    samples: list[int] = [0]
    bad_samples: list[tuple[Any, ...]] = []

    # Each thread's own instances, read once before any thread writes and never
    # refreshed: stale as soon as another thread writes (owners created later
    # are read at their first use).
    stales = [
        {
            (model, pk): model._base_manager.get(pk=pk)
            for model, pk in [*pool, *((Shelf, shelf.pk) for shelf in shelves)]
        }
        for _ in range(THREADS)
    ]

    def session(cursor: Any) -> None:
        cursor.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {level}")
        cursor.execute("SET deadlock_timeout = '50ms'")  # find a deadlock fast

    def writer(seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(seed)
            with connection.cursor() as cursor:
                session(cursor)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SHOW transaction_isolation")
                assert cursor.fetchone()[0] == level.lower()
            stale = stales[seed]
            try:
                for n in range(ROUNDS):
                    with lock:
                        model, pk = rng.choice(pool)
                    target = rng.choice(targets)
                    way = rng.choice(WAYS)
                    text = f"{seed}.{n}"
                    write = make_write(model, pk, target, way, text, stale)
                    began = datetime.datetime.now(datetime.timezone.utc)
                    for attempt in range(RETRIES):
                        try:
                            result = write()
                        except Exception as exc:
                            what = retried(exc)
                            if what is None and not lost_race(exc):
                                raise
                            with lock:
                                if what is None:
                                    lost[way] += 1
                                else:
                                    retries[what, way] += 1
                            if what is None:
                                break
                            time.sleep(rng.uniform(0, 0.002) * (attempt + 1))
                            continue
                        with lock:
                            ways[way] += 1
                            most[0] = max(most[0], attempt + 1)
                            if result is not None and model is not Card:  # Card: no touch=
                                last_write[result] = max(last_write.get(result, began), began)
                        break
                    else:
                        raise AssertionError(f"{way} of {model.__name__} {pk}: gave up")
            finally:
                with lock:
                    running[0] -= 1
                    if not running[0]:
                        done.set()

        return run

    def make_write(
        model: type[models.Model],
        pk: int,
        target: int | None,
        way: str,
        text: str,
        stale: dict[tuple[type[models.Model], int], Any],
    ) -> Callable[[], int | None]:
        """One write of one owner row; returns the shelf it moved the owner
        onto (None for none)."""
        manager = model._base_manager

        def set_fresh() -> int | None:
            manager.get(pk=pk).set_shelf(target)
            return target

        def stale_one() -> Any:
            """The thread's instance of the row, read once (now, if never before)."""
            if (model, pk) not in stale:
                stale[model, pk] = manager.get(pk=pk)
            return stale[model, pk]

        def set_stale() -> int | None:
            stale_one().set_shelf(target)
            return target

        def save() -> int | None:
            # A stale instance's full save: re-inserts its row if it was deleted.
            obj = stale_one()
            obj.shelf_id = target
            setattr(obj, TEXT[model], text)
            obj.save()
            return target

        def atomic_save() -> int | None:
            with transaction.atomic():
                obj = manager.select_for_update().get(pk=pk)
                obj.shelf_id = target
                setattr(obj, TEXT[model], text)
                obj.save()
            return target

        def queryset_update() -> int | None:
            if not manager.filter(pk=pk).update(shelf_id=target):
                raise model.DoesNotExist  # deleted meanwhile: no row written, none touched
            return target

        def shelf_save() -> int | None:
            # A stale shelf writing its stale counters: the guard puts the counts.
            shelf = stale[Shelf, target or shelves[0].pk]
            shelf.name = text
            shelf.save(update_fields=["name", "volumes_count", "slips_count"])
            return None

        def delete() -> int | None:
            # delete(), then create under the same key: two writes, each its own
            # transaction, as a view deleting a row and another re-adding it.
            manager.get(pk=pk).delete()
            with transaction.atomic():
                manager.create(pk=pk, shelf_id=target, **{TEXT[model]: text})
            return target

        def create() -> int | None:
            obj = model.objects.create(shelf_id=target, **{TEXT[model]: text})
            with lock:
                pool.append((model, obj.pk))  # every thread may move it from now on
            return target

        def create_shelf() -> int | None:
            # A new shelf in no library: its INSERT locks no row another writer
            # needs (a library would: see the last test of this module).
            return manager.get(pk=pk).create_shelf(name=f"New {text}").pk

        return {
            "set fresh": set_fresh,
            "set stale": set_stale,
            "save": save,
            "atomic save": atomic_save,
            "queryset update": queryset_update,
            "shelf save": shelf_save,
            "delete": delete,
            "create": create,
            "create_shelf": create_shelf,
        }[way]

    def sampler() -> None:
        while not done.is_set() and samples[0] < SAMPLES:
            with connection.cursor() as cursor:
                cursor.execute(SAMPLE_SQL)
                rows = cursor.fetchall()
            samples[0] += 1
            for row in rows:
                _, volumes, volume_rows, slips, slip_rows = row
                if volumes != volume_rows or slips != slip_rows or min(volumes, slips) < 0:
                    bad_samples.append(row)

    errors = run_threads(TIME_LIMIT, [writer(t) for t in range(THREADS)] + [sampler])
    assert not errors, errors

    by_what: Counter[str] = Counter()
    for (what, _), n in retries.items():
        by_what[what] += n
    with capsys.disabled():
        print(
            f"\n[counters {level}] {sum(ways.values())} writes committed {dict(ways)}, "
            f"{sum(lost.values())} lost races, {by_what['serialization failure']} "
            f"serialization failures and {by_what['deadlock']} deadlocks retried "
            f"{dict(Counter({f'{w}/{h}': n for (w, h), n in retries.items()}))}, "
            f"at most {most[0]} attempts for one write, {samples[0]} snapshots sampled"
        )

    assert bad_samples == [], "a committed snapshot had a counter unequal to its count"
    assert samples[0] > 0
    assert sum(ways.values()) + sum(lost.values()) == THREADS * ROUNDS
    assert set(ways) == set(WAYS), f"some way never committed: {ways}"
    if level == "READ COMMITTED":
        deadlocks = {way: n for (what, way), n in retries.items() if what == "deadlock"}
        assert not deadlocks, f"single-row writes deadlocked at READ COMMITTED: {deadlocks}"

    volumes = counts_by_shelf(Volume)
    slips = Counter(counts_by_shelf(Slip)) + Counter(counts_by_shelf(Card))
    rows = Shelf.objects.values_list("pk", "volumes_count", "slips_count", "updated")
    assert {pk: (v, s) for pk, v, s, _ in rows} == {
        pk: (volumes.get(pk, 0), slips.get(pk, 0)) for pk, *_ in rows
    }
    assert list(counter_drift(Volume, "shelf")) == []
    assert list(counter_drift(Slip, "shelf")) == []
    # Touched: each shelf no earlier than the start of the last write moving an
    # owner onto it; every shared shelf and library was written to.
    updated = {pk: stamp for pk, _, _, stamp in rows}
    assert {pk: updated[pk] >= began for pk, began in last_write.items()} == dict.fromkeys(
        last_write, True
    )
    assert all(updated[shelf.pk] > start for shelf in shelves)
    assert not Library.objects.filter(updated__lte=start).exists()


@needs_a_session
def test_create_shelf_in_a_touched_library_and_a_move_of_its_volume_do_not_deadlock() -> None:
    """``create_shelf(library=L)`` and ``set_shelf()`` of the same volume, at READ
    COMMITTED, interleaved so: the creator INSERTs its shelf (whose trigger
    touches L, locking L's row until commit) and pauses before its UPDATE of the
    volume; the mover's single-statement UPDATE of the volume locks the volume,
    its shelves, then waits for L; the creator's UPDATE of the volume then waits
    for the mover. Both must commit (one waiting for the other), and count."""
    library = Library.objects.create(name="L")
    a, b = (Shelf.objects.create(name=name, library=library) for name in "ab")
    volume = Volume.objects.create(title="v", shelf=a)
    ready = threading.Event()  # the mover's connection is open, its pid known
    inserted = threading.Event()
    mover_waits = threading.Event()  # or is done: either lets the creator go on
    mover_pid: list[int] = []
    failed: list[tuple[str, str]] = []  # (who, what)

    def recorded(who: str, write: Callable[[], Any]) -> None:
        try:
            write()
        except Exception as exc:
            failed.append((who, retried(exc) or repr(exc)))
            raise

    def pause_before_the_volume_update(
        execute: Any, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if sql.startswith('UPDATE "tests_volume"'):
            inserted.set()
            assert mover_waits.wait(TIME_LIMIT)
        return execute(sql, params, many, context)

    def creator() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '50ms'")
        assert ready.wait(TIME_LIMIT)
        with connection.execute_wrapper(pause_before_the_volume_update):
            recorded(
                "create_shelf",
                lambda: Volume.objects.get(pk=volume.pk).create_shelf(name="new", library=library),
            )

    def mover() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '50ms'")
            cursor.execute("SELECT pg_backend_pid()")
            mover_pid.append(cursor.fetchone()[0])
        ready.set()
        assert inserted.wait(TIME_LIMIT)
        try:
            recorded("set_shelf", lambda: Volume.objects.get(pk=volume.pk).set_shelf(b))
        finally:
            mover_waits.set()

    def watcher() -> None:
        # Lets the creator go on once the mover waits for a lock (L's row).
        assert inserted.wait(TIME_LIMIT)
        with connection.cursor() as cursor:
            while not mover_waits.is_set():
                cursor.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", mover_pid
                )
                if cursor.fetchone()[0] == "Lock":
                    mover_waits.set()
                time.sleep(0.01)

    errors = run_threads(TIME_LIMIT, [creator, mover, watcher])
    assert failed == []
    assert errors == []
    assert list(counter_drift(Volume, "shelf")) == []
