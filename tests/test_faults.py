"""Fault injection: every SQL statement that ``set_``, ``create_`` and their async
twins issue fails in turn, and the caller sees the database's error while the
database and the instance keep their old state.

Each scenario is first run once to record its statements (and pin how many there
are); then for each statement index and each fault (an ``OperationalError``, an
``IntegrityError``, a lost connection) the scenario runs again from fresh rows with
that statement failing. Each test prints how many injection points it covered.

The tests run outside pytest-django's test transaction (``transaction=True``):
that is where ``create_``'s own transaction commits or rolls back, and where a
connection may really be closed. The async twins run their SQL in asgiref's
thread, so the failing wrapper is installed on that thread's connection.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, OperationalError, connection, connections
from django.db.models import Count
from django.db.utils import InterfaceError

from tests import factories
from tests.helpers import CONTROL, OLD, memory_state, row_state
from tests.models import Author, Book, Library, Shelf, Volume

pytestmark = pytest.mark.django_db(transaction=True)

Wrapper = Callable[..., Any]


@dataclass(frozen=True)
class Scenario:
    """One call: ``set_author(value)`` or ``create_author(save=...)`` on an owner."""

    method: str  # "set" or "create"
    value: str  # set: "key", "instance", "none"; create: "save" or "nosave"
    owner: str  # "existing" (a saved row) or "unsaved" (save() inserts it)
    is_async: bool
    kinds: tuple[str, ...]  # the statements it issues, by leading keyword

    @property
    def id(self) -> str:
        prefix = "a" if self.is_async else ""
        return f"{prefix}{self.method}-{self.value}-{self.owner}"


def _scenarios() -> list[Scenario]:
    out = []
    for is_async in (False, True):
        for owner in ("existing", "unsaved"):
            write = "UPDATE" if owner == "existing" else "INSERT"
            for value in ("key", "instance", "none"):
                out.append(Scenario("set", value, owner, is_async, (write,)))
            out.append(Scenario("create", "save", owner, is_async, ("INSERT", write)))
            out.append(Scenario("create", "nosave", owner, is_async, ("INSERT",)))
    return out


SCENARIOS = _scenarios()
FAULTS = ("operational", "integrity", "lost-connection")


@dataclass
class Rows:
    book: Book
    old: Author
    new: Author


def fresh(scenario: Scenario) -> Rows:
    """New rows: a book pointing at ``old`` (saved or not), with both caches warm."""
    publisher = factories.PublisherFactory()
    old, new = factories.AuthorFactory(), factories.AuthorFactory()
    if scenario.owner == "existing":
        book = Book.objects.get(pk=factories.BookFactory(publisher=publisher, author=old).pk)
        assert book.author == old  # Django's cache
    else:
        book = Book(title="Unsaved", publisher=publisher, author=old)
    assert book.get_author(scope="active_authors") == old  # the scoped cache
    return Rows(book, old, new)


def _call(scenario: Scenario, rows: Rows) -> Coroutine[Any, Any, Any] | Any:
    book = rows.book
    if scenario.method == "set":
        value = {"key": rows.new.pk, "instance": rows.new, "none": None}[scenario.value]
        method = book.aset_author if scenario.is_async else book.set_author
        return method(value)
    method = book.acreate_author if scenario.is_async else book.create_author
    return method(name="Created", save=scenario.value == "save")


def run(scenario: Scenario, rows: Rows, wrapper: Wrapper) -> Any:
    """Call the scenario's method with ``wrapper`` on the connection that runs its SQL."""
    if not scenario.is_async:
        with connection.execute_wrapper(wrapper):
            return _call(scenario, rows)

    def install() -> None:
        connection.execute_wrappers.append(wrapper)

    def uninstall() -> None:
        connection.execute_wrappers.remove(wrapper)
        connections.close_all()  # also drops a connection the fault closed

    async def main() -> Any:
        await sync_to_async(install)()
        try:
            return await _call(scenario, rows)
        finally:
            await sync_to_async(uninstall)()

    return asyncio.run(main())


class Recorder:
    """Let every statement through, noting its SQL."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute: Wrapper, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.sql.append(sql)
        return execute(sql, params, many, context)


class Injector:
    """Make statement ``index`` fail with ``fault``; remember the exception raised."""

    def __init__(self, index: int, fault: str) -> None:
        self.index = index
        self.fault = fault
        self.seen = 0
        self.raised: BaseException | None = None

    def __call__(self, execute: Wrapper, sql: str, params: Any, many: bool, context: Any) -> Any:
        index = self.seen
        self.seen += 1
        if index != self.index:
            return execute(sql, params, many, context)
        try:
            if self.fault == "operational":
                raise OperationalError(f"injected OperationalError at statement {index}")
            if self.fault == "integrity":
                raise IntegrityError(f"injected IntegrityError at statement {index}")
            db = context["connection"]
            if db.vendor == "postgresql":
                # Really lose it: the driver itself reports the dead connection.
                db.connection.close()
                return execute(sql, params, many, context)
            # An in-memory SQLite test database dies with its connection: raise
            # what Django raises for a connection that is gone.
            raise InterfaceError("connection already closed")
        except BaseException as exc:
            self.raised = exc
            raise


def leading_keyword(sql: str) -> str:
    return sql.split(None, 1)[0].upper()


def expected_kinds(scenario: Scenario) -> tuple[str, ...]:
    """The scenario's statements on this database: SQLite's driver-level ``BEGIN`` of
    create's and set's transaction goes through the execute wrappers too, so it is
    a point."""
    if connection.vendor == "sqlite":
        return ("BEGIN", *scenario.kinds)
    return scenario.kinds


def check_recorded(scenario: Scenario) -> int:
    """Without faults the scenario issues exactly the expected statements and works."""
    rows = fresh(scenario)
    recorder = Recorder()
    result = run(scenario, rows, recorder)
    assert tuple(leading_keyword(sql) for sql in recorder.sql) == expected_kinds(scenario)
    book = rows.book
    if scenario.method == "create":
        assert isinstance(result, Author) and result.name == "Created"
        assert Author.all_objects.filter(pk=result.pk).exists()
        expected = result.pk
    else:
        assert result is None
        expected = None if scenario.value == "none" else rows.new.pk
    assert book.author_id == expected
    if scenario.method == "set" or scenario.value == "save":
        assert row_state(book)["author_id"] == expected
    return len(recorder.sql)


def check_fault(scenario: Scenario, index: int, fault: str) -> None:
    """The error reaches the caller unchanged; nothing is half-done anywhere."""
    rows = fresh(scenario)
    book = rows.book
    authors_before = set(Author.all_objects.values_list("pk", flat=True))
    books_before = set(Book.objects.values_list("pk", flat=True))
    row_before = row_state(book) if scenario.owner == "existing" else None
    memory_before = memory_state(book)
    cached_before = book._state.fields_cache["author"]
    injector = Injector(index, fault)

    with pytest.raises(BaseException) as excinfo:
        run(scenario, rows, injector)

    assert injector.raised is not None, "the targeted statement never ran"
    assert excinfo.value is injector.raised  # same object: type and message unchanged
    if fault == "lost-connection" and connection.vendor == "postgresql":
        assert isinstance(excinfo.value, (OperationalError, InterfaceError))
        assert "closed" in str(excinfo.value)
    else:
        expected_type = {"operational": OperationalError, "integrity": IntegrityError}
        assert type(excinfo.value) is expected_type.get(fault, InterfaceError)
        assert str(excinfo.value).startswith(("injected", "connection already closed"))
    assert injector.seen == index + 1, "statements ran after the failing one"
    if fault == "lost-connection":
        connection.close()  # the caller's next step after losing a connection

    assert set(Author.all_objects.values_list("pk", flat=True)) == authors_before  # no orphan
    assert set(Book.objects.values_list("pk", flat=True)) == books_before  # no half insert
    if row_before is not None:
        assert row_state(book) == row_before
    assert memory_state(book) == memory_before
    assert book.author_id == rows.old.pk
    assert book._state.fields_cache["author"] is cached_before
    assert book.get_author(scope="active_authors") == rows.old


GROUPS = {
    f"{'a' if is_async else ''}{method}": [
        s for s in SCENARIOS if s.method == method and s.is_async == is_async
    ]
    for is_async in (False, True)
    for method in ("set", "create")
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_statement_fails_cleanly(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Record each scenario's statements, then fail each one with each fault in turn.

    One test per method (outside a test transaction, each test costs a table
    flush); a failure names its injection point.
    """
    points = 0
    for scenario in GROUPS[group]:
        count = check_recorded(scenario)
        for index in range(count):
            for fault in FAULTS:
                point = (
                    f"{scenario.id} statement {index} ({expected_kinds(scenario)[index]}) {fault}"
                )
                try:
                    check_fault(scenario, index, fault)
                except AssertionError as exc:
                    raise AssertionError(f"injection point {point}: {exc}") from exc
                points += 1
    assert points == sum(len(expected_kinds(s)) for s in GROUPS[group]) * len(FAULTS)
    with capsys.disabled():
        print(f"\n[faults] {group}: {len(GROUPS[group])} scenarios, {points} injection points")


# ------------------------------------------------ touch= and counter_cache=
#
# Volume.shelf counts and touches its Shelf, whose own relation touches its Library:
# the database's triggers do both inside the volume's own INSERT/UPDATE. After the
# write, the cached new shelf and its cached library are read back (one SELECT
# each), and django-simple-history records the volume (an INSERT). Each of those
# statements fails in turn; where the failure comes before anything commits (the
# owner's write itself, or any statement of create_'s transaction), the volumes,
# shelves (counters and timestamps) and libraries keep every column, and the
# volume, the shelves and the libraries in memory keep their state.


@dataclass(frozen=True)
class CountedScenario:
    """``set_shelf(value)`` or ``create_shelf(save=...)`` on a Volume."""

    method: str  # "set" or "create"
    value: str  # set: "key", "instance", "none"; create: "save" or "nosave"
    owner: str  # "existing" or "unsaved"
    is_async: bool
    statements: tuple[tuple[str, str], ...]  # (verb, table), transaction control left out

    @property
    def id(self) -> str:
        prefix = "a" if self.is_async else ""
        return f"{prefix}{self.method}_shelf-{self.value}-{self.owner}"


READ_BACK = (("SELECT", "tests_shelf"), ("SELECT", "tests_library"))
HISTORY = ("INSERT", "tests_historicalvolume")  # django-simple-history's record


def _counted_scenarios() -> list[CountedScenario]:
    out = []
    for is_async in (False, True):
        for owner in ("existing", "unsaved"):
            write = ("UPDATE" if owner == "existing" else "INSERT", "tests_volume")
            # Set by key or to None, the volume caches no shelf: nothing is read back.
            for value in ("key", "none"):
                out.append(CountedScenario("set", value, owner, is_async, (write, HISTORY)))
            out.append(
                CountedScenario("set", "instance", owner, is_async, (write, *READ_BACK, HISTORY))
            )
            # The new shelf's INSERT touches its library, which it caches: read back.
            made = (("INSERT", "tests_shelf"), ("SELECT", "tests_library"))
            # Where rows are locked, the volume's row first (a shelf's triggers
            # touch its library: a concurrent move of the volume takes them after it).
            lock = (
                (("SELECT", "tests_volume"),)
                if owner == "existing" and connection.features.has_select_for_update
                else ()
            )
            out.append(
                CountedScenario(
                    "create", "save", owner, is_async, (*lock, *made, write, *READ_BACK, HISTORY)
                )
            )
            out.append(CountedScenario("create", "nosave", owner, is_async, made))
    return out


COUNTED_SCENARIOS = _counted_scenarios()


@dataclass
class Shelves:
    volume: Volume
    old: Shelf
    new: Shelf


def fresh_shelves(scenario: CountedScenario) -> Shelves:
    """A volume on shelf ``old`` (saved or not) with it and its library cached, and
    a shelf ``new`` in another library, cached on it too."""
    old_library, new_library = (
        Library.objects.create(name="Old"),
        Library.objects.create(name="New"),
    )
    old = Shelf.objects.create(name="Old", library=old_library)
    new = Shelf.objects.select_related("library").get(
        pk=Shelf.objects.create(name="New", library=new_library).pk
    )
    if scenario.owner == "existing":
        volume = Volume.objects.select_related("shelf__library").get(
            pk=Volume.objects.create(title="Counted", shelf=old).pk
        )
    else:
        volume = Volume(
            title="Unsaved", shelf=Shelf.objects.select_related("library").get(pk=old.pk)
        )
    return Shelves(volume, volume.shelf, new)


def _counted_call(scenario: CountedScenario, rows: Shelves) -> Any:
    volume = rows.volume
    if scenario.method == "set":
        value = {"key": rows.new.pk, "instance": rows.new, "none": None}[scenario.value]
        method = volume.aset_shelf if scenario.is_async else volume.set_shelf
        return method(value)
    method = volume.acreate_shelf if scenario.is_async else volume.create_shelf
    return method(name="Created", library=rows.new.library, save=scenario.value == "save")


def run_counted(scenario: CountedScenario, rows: Shelves, wrapper: Wrapper) -> Any:
    """As :func:`run`, for a counted scenario."""
    if not scenario.is_async:
        with connection.execute_wrapper(wrapper):
            return _counted_call(scenario, rows)

    def install() -> None:
        connection.execute_wrappers.append(wrapper)

    def uninstall() -> None:
        connection.execute_wrappers.remove(wrapper)
        connections.close_all()

    async def main() -> Any:
        await sync_to_async(install)()
        try:
            return await _counted_call(scenario, rows)
        finally:
            await sync_to_async(uninstall)()

    return asyncio.run(main())


def _statement(sql: str) -> tuple[str, str]:
    verb = leading_keyword(sql)
    table = re.search(r'(?:INSERT INTO|UPDATE|DELETE FROM|FROM)\s+"?(\w+)"?', sql)
    return verb, table[1] if table else ""


def _tables() -> dict[str, list[dict[str, Any]]]:
    """Every row of the three tables, every column: counters and timestamps included."""
    return {
        model.__name__: list(model._base_manager.order_by("pk").values())
        for model in (Library, Shelf, Volume)
    }


def _memory(rows: Shelves) -> list[dict[str, Any]]:
    objs = [rows.volume, rows.old, rows.old.library, rows.new, rows.new.library]
    return [memory_state(obj) for obj in objs]


def _exact() -> None:
    """Every shelf's volumes_count equals COUNT(*) of its volumes."""
    for shelf in Shelf.objects.annotate(n=Count("volumes")):
        assert shelf.volumes_count == shelf.n, (shelf.name, shelf.volumes_count, shelf.n)


def check_counted_recorded(scenario: CountedScenario) -> list[tuple[str, str]]:
    """Without faults the scenario sends the expected statements, counts and
    touches in the database, and reads the cached shelf and library back.
    Returns what it sent, transaction control included (each is a point)."""
    rows = fresh_shelves(scenario)
    Shelf.objects.update(updated=OLD)  # Library's touch fires after: aged next
    Library.objects.update(updated=OLD)
    recorder = Recorder()
    result = run_counted(scenario, rows, recorder)
    sent = [_statement(sql) for sql in recorder.sql]
    assert tuple(s for s in sent if s[0] not in CONTROL) == scenario.statements
    volume = rows.volume
    if scenario.method == "create":
        assert isinstance(result, Shelf) and volume.shelf is result
        expected: Shelf | None = result
    else:
        expected = {"key": rows.new, "instance": rows.new, "none": None}[scenario.value]
    saved = scenario.method == "set" or scenario.value == "save"
    if saved:
        assert row_state(volume)["shelf_id"] == (expected.pk if expected else None)
    counts = dict(Shelf.objects.values_list("pk", "volumes_count"))
    counted_before = scenario.owner == "existing"
    assert counts[rows.old.pk] == (1 if counted_before and not saved else 0)
    if expected is not None:
        assert counts[expected.pk] == (1 if saved else 0)
    if scenario.method == "set":  # the shelves the write left and reached are touched
        for shelf in (rows.old, expected):
            if shelf is not None and (shelf is expected or counted_before):
                row = Shelf.objects.get(pk=shelf.pk)
                assert row.updated > OLD and row.library.updated > OLD
    if saved and expected is not None and scenario.value != "key":  # cached: read back
        row = Shelf.objects.get(pk=expected.pk)
        assert (expected.volumes_count, expected.updated) == (1, row.updated)
        assert expected.library.updated == row.library.updated
    _exact()
    return sent


def _known_bug(scenario: CountedScenario, index: int, sent: list[tuple[str, str]]) -> bool:
    """The points of the bug that test_a_failure_after_the_read_back_of_a_chained_target
    pins: a statement of set_shelf(shelf) after the shelf's cached library was read back."""
    if scenario.method != "set" or scenario.value != "instance":
        return False
    return index > sent.index(("SELECT", "tests_library"))


def _points(group: str, known_bug: bool) -> list[tuple[CountedScenario, int, str]]:
    """The group's injection points (scenario, statement index, verb): those of
    the known bug (``known_bug``), or all the others."""
    points = []
    for scenario in COUNTED_GROUPS[group]:
        sent = check_counted_recorded(scenario)
        for index, (verb, _table) in enumerate(sent):
            if _known_bug(scenario, index, sent) is known_bug:
                points.append((scenario, index, verb))
    return points


class RecordingInjector(Injector):
    """An :class:`Injector` that notes the SQL of every statement: after the failing
    one, only the rollback of a savepoint may run."""

    def __init__(self, index: int, fault: str) -> None:
        super().__init__(index, fault)
        self.sql: list[str] = []

    def __call__(self, execute: Wrapper, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.sql.append(sql)
        return super().__call__(execute, sql, params, many, context)


def check_counted_fault(scenario: CountedScenario, index: int, fault: str) -> None:
    """The error reaches the caller unchanged; every row and every instance as before."""
    rows = fresh_shelves(scenario)
    tables = _tables()
    memory = _memory(rows)
    injector = RecordingInjector(index, fault)
    with pytest.raises(BaseException) as excinfo:
        run_counted(scenario, rows, injector)
    assert injector.raised is not None, "the targeted statement never ran"
    assert excinfo.value is injector.raised
    after = [leading_keyword(sql) for sql in injector.sql[index + 1 :]]
    assert all(verb in CONTROL for verb in after), f"statements ran after the failing one: {after}"
    if fault == "lost-connection":
        connection.close()
    _exact()
    assert _tables() == tables
    assert _memory(rows) == memory
    assert rows.volume.shelf is rows.old


COUNTED_GROUPS = {
    f"{'a' if is_async else ''}{method}_shelf": [
        s for s in COUNTED_SCENARIOS if s.method == method and s.is_async == is_async
    ]
    for is_async in (False, True)
    for method in ("set", "create")
}


def _inject(points: list[tuple[CountedScenario, int, str]]) -> int:
    done = 0
    for scenario, index, verb in points:
        for fault in FAULTS:
            point = f"{scenario.id} statement {index} ({verb}) {fault}"
            try:
                check_counted_fault(scenario, index, fault)
            except AssertionError as exc:
                raise AssertionError(f"injection point {point}: {exc}") from exc
            done += 1
    return done


@pytest.mark.parametrize("group", list(COUNTED_GROUPS))
def test_every_counter_and_touch_statement_fails_cleanly(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each statement of set_shelf() / create_shelf() and their async twins (the
    write that counts and touches, the read-back, the history INSERT, the
    transaction's BEGIN on SQLite) fails in turn: all or nothing, in the rows
    and in memory. One test per method: a failure names its injection point."""
    points = _points(group, known_bug=False)
    done = _inject(points)
    assert done == len(points) * len(FAULTS)
    with capsys.disabled():
        scenarios = len(COUNTED_GROUPS[group])
        print(f"\n[faults] {group}: {scenarios} scenarios, {done} injection points")


@pytest.mark.parametrize("group", ["set_shelf", "aset_shelf"])
def test_a_failure_after_the_read_back_of_a_chained_target_restores_it(group: str) -> None:
    """What should hold there too: all or nothing, in the rows and in memory."""
    points = _points(group, known_bug=True)
    assert points  # set_shelf(shelf): the history INSERT after the read-back
    _inject(points)
