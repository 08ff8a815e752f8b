"""Plain helpers that several test modules share (the fixtures are in conftest.py,
the factories in factories.py, the marks in markers.py): snapshots for "nothing
changed" assertions, fresh rows, saves and statements made to fail, query capture
by alias and in Django's async worker thread, a recording database router, threads
started together, and the counters' and timestamps' rows of counter_cache= and touch=."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import OperationalError, connection, connections, models
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from belongsto_ext import install_triggers
from tests import factories
from tests.models import Card, Label, Library, Node, Shelf, Slip, Volume

T = TypeVar("T")

# Transaction control, left out of what sent() records: SQLite logs its BEGIN,
# PostgreSQL does not.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


# ------------------------------------------------------------ snapshots


def row_state(instance: models.Model) -> dict[str, Any]:
    """The instance's row as the database holds it now (concrete column values)."""
    model = type(instance)
    return (
        model._base_manager.filter(pk=instance.pk)
        .values(*[f.attname for f in model._meta.concrete_fields])
        .get()
    )


def memory_state(instance: models.Model) -> dict[str, Any]:
    """The instance's in-memory attribute values and Django's cache entries."""
    return {
        "attrs": {k: v for k, v in instance.__dict__.items() if k != "_state"},
        "db": instance._state.db,
        "adding": instance._state.adding,
        "cache": dict(instance._state.fields_cache),
    }


def check_mode(mode: str) -> None:
    """The test really runs inside pytest-django's transaction, or really outside
    one (``mode`` of :data:`tests.markers.BOTH_MODES`)."""
    assert connection.in_atomic_block == (mode == "in-test-transaction")


# ------------------------------------------------------------ fresh rows


def fresh(instance: models.Model, queryset: models.QuerySet | None = None) -> Any:
    """The instance re-read from the database (through ``queryset`` if given,
    else the base manager), with no related object cached."""
    if queryset is None:
        queryset = type(instance)._base_manager.all()
    return queryset.get(pk=instance.pk)


def book_by(**author_fields: Any) -> tuple[Any, Any]:
    """A saved author with ``author_fields`` and a fresh book pointing at it."""
    author = factories.AuthorFactory(**author_fields)
    return fresh(factories.BookFactory(author=author)), author


def data_statements(ctx: CaptureQueriesContext) -> list[str]:
    """Each statement ``ctx`` captured but transaction control (:data:`CONTROL`:
    savepoints, BEGIN, COMMIT, ROLLBACK), as its leading keywords: ``INSERT INTO
    "auth_user"``, ``UPDATE "tests_account"``, ``SELECT``."""
    out = []
    for q in ctx.captured_queries:
        sql = q["sql"]
        if not sql.startswith(CONTROL):
            out.append(re.match(r'(\w+(?: INTO)? "\w+"|\w+)', sql).group(1))  # type: ignore[union-attr]
    return out


# ------------------------------------------------------------ failures


@contextlib.contextmanager
def failing_saves(
    sender: type[models.Model],
    *,
    after_write: bool = False,
    error: type[BaseException] = RuntimeError,
) -> Iterator[None]:
    """In the block, every save of ``sender`` raises ``error("<model> save refused")``
    (``"book save refused"``) from a receiver of pre_save, before its INSERT or
    UPDATE, or with ``after_write=True`` of post_save, after it (a history table or
    a search index that is down). The ``fail_saves`` fixture does it to the end of
    the test."""
    signal = post_save if after_write else pre_save
    message = f"{sender._meta.model_name} save refused"

    def refuse(**kwargs: Any) -> None:
        raise error(message)

    signal.connect(refuse, sender=sender, weak=False)
    try:
        yield
    finally:
        signal.disconnect(refuse, sender=sender)


def failing_statements(pattern: str, message: str) -> Callable[..., Any]:
    """An execute wrapper (``connection.execute_wrapper()``) under which each
    statement that ``pattern`` matches at its start raises ``OperationalError(message)``
    instead of running; the others run."""

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if re.match(pattern, sql):
            raise OperationalError(message)
        return execute(sql, params, many, context)

    return wrapper


# ------------------------------------------------------------ SQLite


def lower_limit(limit: int) -> Callable[[], None]:
    """Lower SQLite's parameter limit on this thread's live connection; return
    what puts the old one back (tests.markers.on_sqlite and needs_setlimit)."""
    connection.ensure_connection()
    raw = connection.connection
    old = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    return lambda: raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, old)


# -------------------------------------------------------- queries by alias


@contextlib.contextmanager
def sent(aliases: Sequence[str]) -> Iterator[dict[str, list[str]]]:
    """``{alias: [statement verb, ...]}`` for the queries this thread sends to each
    of ``aliases`` inside the block (transaction control left out: :data:`CONTROL`)."""
    result: dict[str, list[str]] = {}
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in aliases}
    try:
        with contextlib.ExitStack() as stack:
            for context in contexts.values():
                stack.enter_context(context)
            yield result
    finally:
        for alias, context in contexts.items():
            verbs = [q["sql"].split(None, 1)[0].upper() for q in context.captured_queries]
            result[alias] = [verb for verb in verbs if verb not in CONTROL]


def only(aliases: Sequence[str], alias: str, *verbs: str) -> dict[str, list[str]]:
    """What :func:`sent` holds when ``verbs`` went to ``alias`` and nothing elsewhere."""
    return {a: list(verbs) if a == alias else [] for a in aliases}


# ------------------------------------------------------------------ async


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` in a fresh event loop; close the worker thread's connections after."""

    async def wrapper() -> T:
        try:
            return await main()
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(wrapper())


@contextlib.asynccontextmanager
async def worker_queries() -> AsyncIterator[list[str]]:
    """Collect the SQL that ``sync_to_async`` code (Django's one worker thread) runs
    while the block runs."""
    captured: list[str] = []
    context = CaptureQueriesContext(connection)
    await sync_to_async(context.__enter__)()
    try:
        yield captured
    finally:
        await sync_to_async(context.__exit__)(None, None, None)
        captured.extend(await sync_to_async(lambda: [q["sql"] for q in context.captured_queries])())


# ---------------------------------------------------------------- routing


class RecordingRouter:
    """Records every ``db_for_read`` and ``db_for_write`` call as ``(model, hints)``;
    reads are left to Django, writes go to "default"."""

    def __init__(self) -> None:
        self.reads: list[tuple[type[models.Model], dict[str, Any]]] = []
        self.writes: list[tuple[type[models.Model], dict[str, Any]]] = []

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        self.reads.append((model, hints))
        return None

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str:
        self.writes.append((model, hints))
        return "default"


# ------------------------------------------------------------ threads


def run_threads(time_limit: float, targets: list[Callable[[], None]]) -> list[BaseException]:
    """Start the targets together; return their errors. Fails if any thread is
    still running after ``time_limit`` seconds (a deadlock, say)."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait(timeout=time_limit)
                target()
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        return run

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + time_limit
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"threads still running after {time_limit}s (deadlock?): {hung}"
    return errors


# ------------------------------------------------ counter_cache= and touch=
#
# Shared by tests/test_counters.py and tests/test_counters_paths.py: the rows'
# timestamps and counters, the statements a write sends, COUNT(*) to compare with.

# Timestamps older than any write a test makes, set with the triggers dropped.
OLD = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
OLD_DAY = datetime.date(2000, 1, 1)

# django-simple-history records every Volume write with an INSERT of its own, after
# it: not this feature's statement, so left out of what statements() lists.
HISTORY = "tests_historicalvolume"

# Each counter column of Shelf and the owner models counting into it.
COUNTED: dict[str, tuple[type[models.Model], ...]] = {
    "volumes_count": (Volume,),
    "labels_count": (Label,),
    "slips_count": (Slip, Card),
}


@contextlib.contextmanager
def statements(alias: str = "default") -> Iterator[list[tuple[str, str]]]:
    """``[(verb, table), ...]`` of the statements sent to ``alias`` in the block,
    transaction control and django-simple-history's INSERT left out."""
    out: list[tuple[str, str]] = []
    with CaptureQueriesContext(connections[alias]) as ctx:
        yield out
    for query in ctx.captured_queries:
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        table = re.search(r'(?:INSERT INTO|UPDATE|DELETE FROM|FROM)\s+"?(\w+)"?', sql)
        name = table[1] if table else ""
        if verb not in CONTROL and name != HISTORY:
            out.append((verb, name))


@contextlib.contextmanager
def without_triggers(*models_: type[models.Model], using: str = "default") -> Iterator[None]:
    """Drop this app's triggers on the tables of ``models_`` (as counters._drop
    does) for the block, then put them back with install_triggers()."""
    # The private helpers of the triggers' module, read at the call: the rest of the
    # suite does not depend on where the package keeps them.
    from belongsto_ext.counters import _drop, installed

    connection = connections[using]
    with connection.cursor() as cursor:
        for model in models_:
            table = model._meta.db_table
            for name in sorted(installed(connection, table)):
                _drop(cursor, connection, name, table)
    try:
        yield
    finally:
        install_triggers(*models_, using=using)


def aged(*objs: models.Model) -> None:
    """Set the rows' (and the instances') timestamps to OLD, without the
    triggers, so that no write of the setup shows as a touch."""
    values: dict[type[models.Model], dict[str, Any]] = {
        Library: {"updated": OLD},
        Shelf: {"updated": OLD, "checked_on": OLD_DAY},
        Node: {"updated_at": OLD},
    }
    with without_triggers(*{type(obj) for obj in objs}):
        for obj in objs:
            type(obj)._base_manager.filter(pk=obj.pk).update(**values[type(obj)])
            for name, value in values[type(obj)].items():
                setattr(obj, name, value)


def since() -> datetime.datetime:
    """Now, to the millisecond below (SQLite's triggers write milliseconds): a
    timestamp written after this call is at least this."""
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def db(obj: models.Model) -> Any:
    """The row of ``obj`` as the database holds it now."""
    return type(obj)._base_manager.get(pk=obj.pk)


def counts(*shelves: Shelf, column: str = "volumes_count") -> list[int]:
    return [getattr(db(shelf), column) for shelf in shelves]


def stamps(*objs: models.Model) -> list[Any]:
    """Each row's touched column now: ``updated`` (``updated_at`` of a Node)."""
    return [getattr(db(obj), "updated_at" if isinstance(obj, Node) else "updated") for obj in objs]


def touched_since(start: datetime.datetime, *objs: models.Model) -> list[bool]:
    """For each row: touched at or after ``start`` (True), still OLD (False)."""
    out = []
    for stamp in stamps(*objs):
        assert stamp == OLD or stamp >= start, f"neither OLD nor touched since {start}: {stamp}"
        out.append(stamp >= start)
    return out


def true_counts(column: str) -> Counter[Any]:
    """``COUNT(*)`` of the owner rows per shelf, over every relation counting into ``column``."""
    total: Counter[Any] = Counter()
    for model in COUNTED[column]:
        rows = (
            model._base_manager.exclude(shelf=None)
            .order_by()
            .values("shelf")
            .annotate(n=models.Count("pk"))
            .values_list("shelf", "n")
        )
        total.update(dict(rows))
    return total


def assert_exact() -> None:
    """Every counter of every shelf equals COUNT(*) of the owner rows pointing at it."""
    for column in COUNTED:
        stored = dict(Shelf.objects.values_list("pk", column))
        real = true_counts(column)
        assert stored == {pk: real[pk] for pk in stored}, column
        assert set(real) <= set(stored)


def library_and_shelves(n: int = 2) -> tuple[Library, list[Shelf]]:
    library = factories.LibraryFactory()
    shelves = factories.ShelfFactory.create_batch(n, library=library)
    aged(*shelves, library)
    return library, shelves
