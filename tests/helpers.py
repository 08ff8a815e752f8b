"""Plain helpers that several test modules share (the fixtures are in conftest.py):
snapshots for "nothing changed" assertions, fresh rows, query capture by alias and
in Django's async worker thread, a recording database router."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import OperationalError, connection, connections, models
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext

from tests import factories

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
