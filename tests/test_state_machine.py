"""A Hypothesis state machine drives random sequences of ``get_``/``set_``/``create_``
(sync and async, with and without ``save``, with every kind of value and scope)
against a plain-Python model of what the database and each instance should hold.

After every step the database rows, the instances' key values and the returned
objects match the model, and a refused call changed nothing. The CI run is
bounded and derandomized; ``BELONGSTO_HYPOTHESIS_EXAMPLES`` (and
``BELONGSTO_HYPOTHESIS_STEPS``) ask for a longer, randomized run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, connection, connections
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from belongsto_ext import InvalidScope
from tests.helpers import memory_state, row_state
from tests.models import Author, Book, Publisher

LONG_RUN = "BELONGSTO_HYPOTHESIS_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("BELONGSTO_HYPOTHESIS_EXAMPLES", "30"))
STEPS = int(os.environ.get("BELONGSTO_HYPOTHESIS_STEPS", "30"))
MISSING = 10**9  # keys at and above this never exist

STATS: Counter[str] = Counter()

# What each declared manager of Author selects, as a predicate on the model's row.
MANAGERS: dict[str, Callable[[AuthorRow], bool]] = {
    "objects": lambda a: not a.deleted,
    "all_objects": lambda a: True,
    "active_authors": lambda a: a.active,
    "verified_authors": lambda a: a.verified,
}
VALID_SCOPES: list[tuple[Any, tuple[str, ...]]] = [
    (None, ("objects",)),
    (True, ("objects",)),
    (False, ("all_objects",)),
    *((name, (name,)) for name in MANAGERS),
    (["active_authors", "verified_authors"], ("active_authors", "verified_authors")),
    (("objects", "active_authors"), ("objects", "active_authors")),
    (["all_objects"], ("all_objects",)),
]
INVALID_SCOPES: list[Any] = [
    "delete",
    "",
    "nope",
    "_base_manager",
    "objects.delete",
    "__class__",
    [],
    ["active_authors", "bogus"],
    ("objects", None),
    0,
    b"objects",
    {"objects"},
]
BAD_VALUES: list[Any] = [
    "abc",
    1.5,
    [1],
    {"pk": 1},
    object(),
    b"1",
    True,
    "",
    float("nan"),
    2**64,
    -(2**70),
]


@dataclass(frozen=True)
class AuthorRow:
    deleted: bool
    active: bool
    verified: bool


@dataclass(frozen=True)
class Keys:
    """An owner's two foreign key values (in memory or in its row)."""

    author: int | None
    publisher: int


def run_call(call: Callable[[], Any], is_async: bool) -> Any:
    """Run a method call, awaiting it in a fresh event loop when it is async."""
    result = call()
    if is_async:
        return asyncio.run(result)
    return result


class BelongsToMachine(RuleBasedStateMachine):
    """Book instances (saved and unsaved) against a model of rows and key values."""

    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        Book.objects.all().delete()
        Author.all_objects.all().delete()
        Publisher.objects.all().delete()
        self.counter = itertools.count()
        self.publishers = [Publisher.objects.create(name=f"P{i}").pk for i in range(2)]
        self.authors: dict[int, AuthorRow] = {}
        for flags in [
            (False, True, False),
            (True, True, False),
            (False, False, True),
            (False, True, True),
        ]:
            row = AuthorRow(*flags)
            author = Author.all_objects.create(
                name="seed", slug=f"seed-{next(self.counter)}", **vars(row)
            )
            self.authors[author.pk] = row
        seed = list(self.authors)
        self.books: list[Book] = []
        self.mem: list[Keys] = []
        self.db: dict[int, Keys] = {}
        for author_id, publisher_id in [
            (seed[0], self.publishers[0]),
            (None, self.publishers[1]),
            (seed[1], self.publishers[0]),
        ]:
            created = Book.objects.create(
                title="seed", author_id=author_id, publisher_id=publisher_id
            )
            self.books.append(Book.objects.get(pk=created.pk))
            self.mem.append(Keys(author_id, publisher_id))
            self.db[created.pk] = Keys(author_id, publisher_id)

    # ------------------------------------------------------------ helpers

    def _exists(self, column: str, value: Any) -> bool:
        if column == "author":
            return value is None or value in self.authors
        return value in self.publishers

    def _save_ok(self, i: int, keys: Keys, columns: list[str]) -> bool:
        """Whether saving ``keys`` passes the foreign key constraints: an existing row
        writes only ``columns``, an unsaved one inserts every column."""
        written = columns if self.books[i].pk in self.db else ["author", "publisher"]
        return all(self._exists(c, getattr(keys, c)) for c in written)

    def _saved(self, i: int, columns: list[str]) -> None:
        book, keys = self.books[i], self.mem[i]
        if book.pk in self.db:
            self.db[book.pk] = replace(self.db[book.pk], **{c: getattr(keys, c) for c in columns})
        else:
            assert book.pk is not None and not book._state.adding
            self.db[book.pk] = keys

    def _value(self, data: st.DataObject, column: str) -> tuple[str, Any, Any]:
        """(kind, value to pass, key it stands for or ``refused``)."""
        kind = data.draw(
            st.sampled_from(
                ["instance", "key", "str-key", "none", "missing", "bad", "unsaved", "wrong-model"]
            ),
            label="kind",
        )
        model = Author if column == "author" else Publisher
        pool = sorted(self.authors) if column == "author" else self.publishers
        if kind in ("instance", "key", "str-key"):
            pk = data.draw(st.sampled_from(pool), label="pk")
            value = {
                "instance": lambda: model._base_manager.get(pk=pk),
                "key": lambda: pk,
                "str-key": lambda: f" {pk}",
            }[kind]()
            return kind, value, pk
        if kind == "none":
            return kind, None, None if column == "author" else "refused"
        if kind == "missing":
            pk = MISSING + data.draw(st.integers(0, 1000), label="missing")
            return kind, data.draw(st.sampled_from([pk, str(pk)]), label="as"), pk
        if kind == "bad":
            return kind, data.draw(st.sampled_from(BAD_VALUES), label="bad"), "refused"
        if kind == "unsaved":
            return kind, model(name="unsaved"), "refused"
        other = Publisher if column == "author" else Author
        return kind, other._base_manager.first(), "refused"

    def _check_unchanged(
        self, book: Book, memory: dict[str, Any], row: dict[str, Any] | None
    ) -> None:
        assert memory_state(book) == memory
        assert (row_state(book) if row is not None else None) == row

    # -------------------------------------------------------------- rules

    @rule(data=st.data(), save=st.booleans(), is_async=st.booleans())
    def set_author(self, data: st.DataObject, save: bool, is_async: bool) -> None:
        self._set(data, "author", save, is_async)

    @rule(data=st.data(), save=st.booleans(), is_async=st.booleans())
    def set_publisher(self, data: st.DataObject, save: bool, is_async: bool) -> None:
        self._set(data, "publisher", save, is_async)

    def _set(self, data: st.DataObject, column: str, save: bool, is_async: bool) -> None:
        i = data.draw(st.integers(0, len(self.books) - 1), label="book")
        book = self.books[i]
        kind, value, target = self._value(data, column)
        STATS[f"{'a' if is_async else ''}set_{column} {kind} save={save}"] += 1
        memory, row = memory_state(book), (row_state(book) if book.pk in self.db else None)
        keys = replace(self.mem[i], **{column: target}) if target != "refused" else None
        method = getattr(book, f"{'a' if is_async else ''}set_{column}")
        with CaptureQueriesContext(connection) as ctx:
            try:
                result, error = run_call(lambda: method(value, save=save), is_async), None
            except Exception as exc:
                result, error = None, exc
        if keys is None:
            assert isinstance(error, (TypeError, ValueError)), (kind, value, error)
            assert column in str(error) and "Book" in str(error)
            assert not ctx.captured_queries  # refused before any query (sync; async runs elsewhere)
            self._check_unchanged(book, memory, row)
        elif save and not self._save_ok(i, keys, [column]):
            assert isinstance(error, IntegrityError), (kind, value, error)
            self._check_unchanged(book, memory, row)
        else:
            assert error is None, (kind, value, error)
            assert result is None
            self.mem[i] = keys
            if save:
                self._saved(i, [column])
            elif not is_async:
                assert not ctx.captured_queries  # save=False: no query at all
            if kind == "instance":
                with CaptureQueriesContext(connection) as ctx:
                    assert getattr(book, f"get_{column}")(scope=False) is value
                assert not ctx.captured_queries

    @rule(
        data=st.data(),
        kind=st.sampled_from(["ok", "ok", "ok", "bad-field", "duplicate-slug", "not-a-mapping"]),
        flags=st.builds(AuthorRow, st.booleans(), st.booleans(), st.booleans()),
        save=st.booleans(),
        is_async=st.booleans(),
    )
    def create_author(
        self, data: st.DataObject, kind: str, flags: AuthorRow, save: bool, is_async: bool
    ) -> None:
        i = data.draw(st.integers(0, len(self.books) - 1), label="book")
        book = self.books[i]
        STATS[f"{'a' if is_async else ''}create_author {kind} save={save}"] += 1
        memory, row = memory_state(book), (row_state(book) if book.pk in self.db else None)
        slug = f"made-{next(self.counter)}"
        args: tuple[Any, ...] = ({"name": "made", "slug": slug},)
        fields: dict[str, Any] = vars(flags).copy()
        if kind == "bad-field":
            fields["colour"] = "red"
        elif kind == "duplicate-slug":
            args = (
                {"name": "made", "slug": Author.all_objects.values_list("slug", flat=True).first()},
            )
        elif kind == "not-a-mapping":
            args = (["name", "made"],)
        method = book.acreate_author if is_async else book.create_author
        try:
            result, error = run_call(lambda: method(*args, save=save, **fields), is_async), None
        except Exception as exc:
            result, error = None, exc
        if kind in ("bad-field", "not-a-mapping"):
            assert isinstance(error, TypeError), error
            self._check_unchanged(book, memory, row)
        elif kind == "duplicate-slug" or (
            # the new row exists: only an unsaved owner's insert of a missing publisher fails
            save and book.pk not in self.db and not self._exists("publisher", self.mem[i].publisher)
        ):
            assert isinstance(error, IntegrityError), error
            self._check_unchanged(book, memory, row)
        else:
            assert error is None, error
            assert isinstance(result, Author) and result.pk not in self.authors
            assert (result.slug, AuthorRow(result.deleted, result.active, result.verified)) == (
                slug,
                flags,
            )
            self.authors[result.pk] = flags
            self.mem[i] = replace(self.mem[i], author=result.pk)
            if save:
                self._saved(i, ["author"])
            assert book._state.fields_cache["author"] is result

    @rule(data=st.data(), scope=st.sampled_from(INVALID_SCOPES), is_async=st.booleans())
    def get_author_invalid_scope(self, data: st.DataObject, scope: Any, is_async: bool) -> None:
        book = self.books[data.draw(st.integers(0, len(self.books) - 1), label="book")]
        STATS[f"{'a' if is_async else ''}get_author invalid scope"] += 1
        memory = memory_state(book)
        with (
            CaptureQueriesContext(connection) as ctx,
            pytest.raises(InvalidScope, match=r"tests\.Author"),
        ):
            run_call(
                lambda: (book.aget_author if is_async else book.get_author)(scope=scope),
                is_async,
            )
        assert not ctx.captured_queries
        assert memory_state(book) == memory

    @rule(data=st.data(), is_async=st.booleans())
    def get_author(self, data: st.DataObject, is_async: bool) -> None:
        i = data.draw(st.integers(0, len(self.books) - 1), label="book")
        book = self.books[i]
        scope, names = data.draw(st.sampled_from(VALID_SCOPES), label="scope")
        STATS[f"{'a' if is_async else ''}get_author scope={names}"] += 1
        key = self.mem[i].author
        row = self.authors.get(key) if key is not None else None
        expected = key if row is not None and all(MANAGERS[n](row) for n in names) else None
        got = run_call(
            lambda: (book.aget_author if is_async else book.get_author)(scope=scope), is_async
        )
        assert (got.pk if got is not None else None) == expected, (scope, key)
        assert got is None or type(got) is Author
        with CaptureQueriesContext(connection) as ctx:
            assert book.get_author(scope=scope) is got  # cached per scope: no query
        assert not ctx.captured_queries

    @rule(data=st.data(), flag=st.sampled_from(["deleted", "active", "verified"]))
    def toggle_author(self, data: st.DataObject, flag: str) -> None:
        """Change a row behind the instances' backs, then refresh them (which must drop
        their cached scoped results)."""
        pk = data.draw(st.sampled_from(sorted(self.authors)), label="author")
        STATS["toggle author + refresh"] += 1
        row = self.authors[pk]
        self.authors[pk] = replace(row, **{flag: not getattr(row, flag)})
        Author.all_objects.filter(pk=pk).update(**{flag: not getattr(row, flag)})
        for i, book in enumerate(self.books):
            if book.pk in self.db:
                book.refresh_from_db()
                self.mem[i] = self.db[book.pk]
            else:
                book.author_id = book.author_id  # an unsaved instance: reassigning drops the cache

    @precondition(lambda self: len(self.books) < 5)
    @rule(data=st.data())
    def new_unsaved_book(self, data: st.DataObject) -> None:
        STATS["new unsaved book"] += 1
        publisher = data.draw(st.sampled_from(self.publishers), label="publisher")
        self.books.append(Book(title="unsaved", publisher_id=publisher))
        self.mem.append(Keys(None, publisher))

    # --------------------------------------------------------- invariant

    @invariant()
    def matches_model(self) -> None:
        STATS["steps checked"] += 1
        assert {
            pk: Keys(a, p)
            for pk, a, p in Book.objects.values_list("pk", "author_id", "publisher_id")
        } == self.db
        assert {
            pk: AuthorRow(d, a, v)
            for pk, d, a, v in Author.all_objects.values_list("pk", "deleted", "active", "verified")
        } == self.authors
        assert sorted(Publisher.objects.values_list("pk", flat=True)) == sorted(self.publishers)
        for book, keys in zip(self.books, self.mem, strict=True):
            assert Keys(book.__dict__["author_id"], book.__dict__["publisher_id"]) == keys
            assert (book.pk in self.db) == (not book._state.adding)


@pytest.mark.django_db(transaction=True)
def test_state_machine(capsys: pytest.CaptureFixture[str]) -> None:
    """Random call sequences keep the database, the instances and the model in step."""
    STATS.clear()
    try:
        run_state_machine_as_test(
            BelongsToMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=not LONG_RUN,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )
    finally:
        asyncio.run(sync_to_async(connections.close_all)())  # asgiref's thread's connection
    calls = sum(n for name, n in STATS.items() if name not in ("examples", "steps checked"))
    with capsys.disabled():
        print(
            f"\n[state machine] {STATS['examples']} examples, {calls} steps run, "
            f"{STATS['steps checked']} invariant checks ({connection.vendor})"
        )
        by_call = Counter()
        for name, n in STATS.items():
            by_call[name.split(" ")[0]] += n
        print("  " + ", ".join(f"{name} {n}" for name, n in sorted(by_call.items())))
    assert calls > 0
