"""Batch loading at any scale (issue "batch loading at any scale").

1. ``prefetch()``, ``aprefetch()``, Django 6.1's ``FETCH_PEERS`` and ``ScopedPrefetch``
   read each distinct key once, in batches no larger than the connection takes
   (less the scope's own parameters), one query per batch, with the answers one
   query would give.
2. ``ScopedPrefetch`` fills the scoped cache wherever a ``Prefetch`` works.
3. Owners of one target share one target object, as with Django's prefetch.
4. Pages built on it (DRF, the admin) cost a fixed number of queries.
5. ``prefetch()`` reads only what no cache answers, and refreshes nothing.

The limits are the real ones, never mocked:

- SQLite: the tests lower ``SQLITE_LIMIT_VARIABLE_NUMBER`` to 999 on the live
  connection (``sqlite3.Connection.setlimit()``, Python 3.11+); a statement with
  1,000 parameters then fails (``test_the_lowered_sqlite_limit_is_real``);
- PostgreSQL: the ``bound`` alias (``testproject/test_settings.py``) is default's
  database with ``server_side_binding``: at most 65,535 parameters a statement.

Parameters are counted as sent: ``connection.execute_wrapper()`` sees each
statement's parameter list before the database does (:class:`Sent`).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import django
import pytest
from asgiref.sync import sync_to_async
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import DatabaseError, OperationalError, connection, connections, models
from django.db.models import Prefetch, aprefetch_related_objects, prefetch_related_objects
from django.http import HttpRequest
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path
from rest_framework import generics, pagination, serializers
from rest_framework.test import APIRequestFactory

from belongsto_ext import InvalidScope, ScopedPrefetch, aprefetch, prefetch
from tests import factories
from tests.helpers import lower_limit
from tests.markers import needs_fetch_modes, needs_setlimit, on_postgres, on_sqlite
from tests.models import Author, Book, Publisher, Review

pytestmark = pytest.mark.django_db

#: SQLite's parameter limit while a test holds the ``sqlite_limit`` fixture.
LIMIT = 999
#: The most parameters PostgreSQL takes in a statement with server-side binding.
PG_LIMIT = 65_535

# 200 authors the parameter-heavy QuerySet scope below hides by name.
HIDDEN = tuple(f"y{i}" for i in range(0, 400, 2))

# (scope factory, the same rows written without belongsto_ext). The QuerySet
# scopes carry parameters of their own (1 and 200) that a batch must make room for.
SCOPES: list[Any] = [
    pytest.param(lambda: None, lambda: Author.objects.all(), id="None"),
    pytest.param(
        lambda: "active_authors", lambda: Author.all_objects.filter(active=True), id="active"
    ),
    pytest.param(
        lambda: ["active_authors", "verified_authors"],
        lambda: Author.all_objects.filter(active=True, verified=True),
        id="list",
    ),
    pytest.param(
        lambda: Author.all_objects.filter(name__startswith="x"),
        lambda: Author.all_objects.filter(name__startswith="x"),
        id="queryset-1-param",
    ),
    pytest.param(
        lambda: Author.all_objects.exclude(name__in=HIDDEN),
        lambda: Author.all_objects.exclude(name__in=HIDDEN),
        id="queryset-200-params",
    ),
]


# ------------------------------------------------------------------ helpers


class Sent:
    """The SELECTs run on one connection while active, as sent: ``(sql, params)``.

    ``connection.execute_wrapper()`` sees the parameters before the database
    does, so a statement the database refuses is recorded too.
    """

    def __init__(self, alias: str = "default") -> None:
        self.connection = connections[alias]
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            self.statements.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    def __enter__(self) -> Sent:
        self._wrapping = self.connection.execute_wrapper(self)
        self._wrapping.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._wrapping.__exit__(*exc)

    @property
    def sizes(self) -> list[int]:
        """How many parameters each statement carried."""
        return [len(params) for _sql, params in self.statements]


@pytest.fixture
def sqlite_limit() -> Iterator[int]:
    """SQLite's parameter limit at :data:`LIMIT` for the test."""
    restore = lower_limit(LIMIT)
    try:
        yield LIMIT
    finally:
        restore()


def make_owners(owners: int, authors: int) -> None:
    """``owners`` books over ``authors`` distinct authors (book ``i`` -> author
    ``i % authors``), with ``bulk_create``. The authors mix deleted, inactive,
    unverified, "x"- and "y"-named ones: every scope in :data:`SCOPES` finds
    some and hides some."""
    publisher = Publisher.objects.create(name="Batch Press")
    made = Author.all_objects.bulk_create(
        Author(
            name=f"{'x' if i % 2 else 'y'}{i}",
            deleted=i % 5 == 1,
            active=i % 3 != 0,
            verified=i % 4 < 2,
        )
        for i in range(authors)
    )
    Book.objects.bulk_create(
        Book(title=f"Book {i}", publisher=publisher, author_id=made[i % authors].pk)
        for i in range(owners)
    )


def insert_owners(owners: int) -> None:
    """``owners`` books, each with an author of its own, inserted by the database
    (``INSERT ... SELECT`` over ``generate_series``, PostgreSQL): ``bulk_create``
    takes some 20 seconds for the 140,000 rows of the 70,000-owner tests."""
    publisher = Publisher.objects.create(name="Bound Press")
    quote = connection.ops.quote_name

    def columns(model: type[models.Model], *names: str) -> str:
        return ", ".join(quote(model._meta.get_field(name).column) for name in names)

    author_table, book_table = quote(Author._meta.db_table), quote(Book._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {author_table} ({columns(Author, 'name', 'deleted', 'active', 'verified')}) "
            "SELECT 'a' || g, g %% 5 = 1, g %% 3 <> 0, g %% 4 < 2 FROM generate_series(1, %s) AS g",
            [owners],
        )
        cursor.execute(
            f"INSERT INTO {book_table} "
            f"({columns(Book, 'title', 'pages', 'author', 'publisher', 'created', 'updated')}) "
            f"SELECT 'Book ' || {quote('id')}, 0, {quote('id')}, %s, now(), now() "
            f"FROM {author_table}",
            [publisher.pk],
        )
    assert Book.objects.count() == owners


def load_books(**options: Any) -> list[Book]:
    queryset = Book.objects.order_by("pk")
    if "fetch_mode" in options:
        queryset = queryset.fetch_mode(options["fetch_mode"])  # type: ignore[attr-defined]
    return list(queryset)


def scope_parameters(rows: models.QuerySet) -> tuple[Any, ...]:
    """The parameters a query of the scope's rows carries before any key (Django
    6.1 sends ``deleted=False`` as one, 5.2 as ``NOT deleted``), taken from a real
    run of the same rows written without belongsto_ext."""
    with Sent() as sent:
        list(rows.values_list("pk")[:1])
    return sent.statements[0][1]


def own_parameters(rows: models.QuerySet) -> int:
    return len(scope_parameters(rows))


def keys_sent(params: tuple[Any, ...], rows: models.QuerySet) -> list[Any]:
    """The keys among a batch's parameters: those after the scope's own."""
    own = scope_parameters(rows)
    assert params[: len(own)] == own
    return sorted(params[len(own) :])


def answer(author: Author | None) -> tuple[int, str] | None:
    return None if author is None else (author.pk, author.name)


def answers(books: list[Book], scope: Any, using: str | None = None) -> dict[int, Any]:
    """``{book pk: (author pk, name) or None}`` as ``get_author(scope=...)`` answers."""
    return {book.pk: answer(book.get_author(scope=scope, using=using)) for book in books}  # type: ignore[attr-defined]


def reference(books: list[Book], rows: models.QuerySet) -> dict[int, Any]:
    """What :func:`answers` must return, from one query of the scope's rows."""
    names = dict(rows.values_list("pk", "name"))
    return {
        book.pk: (book.author_id, names[book.author_id]) if book.author_id in names else None
        for book in books
    }


def run_in_loop(
    make_coroutine: Callable[[], Awaitable[Any]], limit: int | None = None
) -> tuple[Any, Sent, int]:
    """Run a coroutine in a new event loop; return its result, the SELECTs sent
    and Django's query count. Its sync work runs on asgiref's worker thread, on
    a connection of its own: that one is lowered to ``limit`` parameters if given."""

    async def main() -> tuple[Any, Sent, int]:
        state: dict[str, Any] = {}

        def enter() -> None:
            if limit is not None:
                state["restore"] = lower_limit(limit)
            state["ctx"] = CaptureQueriesContext(connection)
            state["ctx"].__enter__()
            state["sent"] = Sent().__enter__()

        def leave() -> int:
            state["sent"].__exit__(None, None, None)
            state["ctx"].__exit__(None, None, None)
            if "restore" in state:
                state["restore"]()
            count = len(state["ctx"])
            connections.close_all()
            return count

        await sync_to_async(enter)()
        try:
            result = await make_coroutine()
        finally:
            count = await sync_to_async(leave)()
        return result, state["sent"], count

    return asyncio.run(main())


# ===================================================== 1. within the limits


def by_prefetch(scope: Any) -> list[Book]:
    books = load_books()
    prefetch(books, "author", scope=scope)
    return books


def by_prefetch_related_objects(scope: Any) -> list[Book]:
    books = load_books()
    prefetch_related_objects(books, ScopedPrefetch("author", scope=scope))
    return books


def by_prefetch_related(scope: Any) -> list[Book]:
    return list(Book.objects.order_by("pk").prefetch_related(ScopedPrefetch("author", scope=scope)))


def by_fetch_peers(scope: Any) -> list[Book]:
    books = load_books(fetch_mode=models.FETCH_PEERS)  # type: ignore[attr-defined]
    books[0].get_author(scope=scope)  # type: ignore[attr-defined]
    return books


# Each loads the books (one query, no parameter), then their authors in scope.
WAYS: dict[str, Callable[[Any], list[Book]]] = {
    "prefetch": by_prefetch,
    "ScopedPrefetch, prefetch_related_objects()": by_prefetch_related_objects,
    "ScopedPrefetch, QuerySet.prefetch_related()": by_prefetch_related,
}
if django.VERSION >= (6, 1):
    WAYS["FETCH_PEERS, the first get"] = by_fetch_peers


def batch_summary(way: Callable[[Any], list[Book]], scope: Any, rows: models.QuerySet) -> Any:
    """What loading the books' authors in ``scope`` one ``way`` did, as a dict
    to compare with what it must do (all ways are checked on the same rows,
    made once: ``bulk_create`` of 5,000 rows is most of each test's time)."""
    own = own_parameters(rows)
    with CaptureQueriesContext(connection) as ctx, Sent() as sent:
        books = way(scope)
    want = reference(books, rows)
    with CaptureQueriesContext(connection) as later:
        # One get per book: a QuerySet scope is compiled on every call.
        found = [book.get_author(scope=scope) for book in books]  # type: ignore[attr-defined]
    return {
        "queries": len(ctx),
        "most parameters in a statement": max(sent.sizes),
        "keys read (each batch less the scope's own parameters)": sum(
            size - own for size in sent.sizes[1:]
        ),
        "answers unlike one query's": sum(
            answer(author) != want[book.pk] for book, author in zip(books, found, strict=True)
        ),
        "queries answering": len(later),
        "author objects": len({id(author) for author in found if author is not None}),
    }


def expected_summary(keys: int, own: int, rows: models.QuerySet, books: list[Book]) -> Any:
    batches = math.ceil(keys / (LIMIT - own))
    visible = {a for a in reference(books, rows).values() if a is not None}
    return {
        "queries": 1 + batches,
        "most parameters in a statement": LIMIT if batches > 1 else own + keys,
        "keys read (each batch less the scope's own parameters)": keys,
        "answers unlike one query's": 0,
        "queries answering": 0,
        "author objects": len(visible),  # one object per row, however many owners
    }


@on_sqlite
@needs_setlimit
def test_the_lowered_sqlite_limit_is_real(sqlite_limit: int) -> None:
    """999 parameters run, 1,000 fail; so does Django's own prefetch of 1,000 authors
    (on Django 5.2 its 1,000 ``OR``-ed comparisons also exceed SQLite's expression
    depth, 1,000, whatever the parameter limit)."""
    make_owners(1000, 1000)
    books = load_books()
    assert len(Author.all_objects.filter(pk__in=range(1, LIMIT + 1))) == LIMIT
    with pytest.raises(OperationalError, match="too many SQL variables"):
        list(Author.all_objects.filter(pk__in=range(1, LIMIT + 2)))
    with pytest.raises(OperationalError, match=r"too many SQL variables|Expression tree"):
        prefetch_related_objects(books, "author")


@on_sqlite
@needs_setlimit
@pytest.mark.parametrize(("make", "rows"), SCOPES)
def test_2500_distinct_keys_go_in_batches_sqlite_takes(
    make: Any, rows: Any, sqlite_limit: int
) -> None:
    """ceil(2,500 / (999 - the scope's parameters)) queries: 3, or 4 for the scope
    with 200 parameters of its own (799 keys a batch)."""
    make_owners(2500, 2500)
    scope = make()
    own = own_parameters(rows())
    assert math.ceil(2500 / (LIMIT - own)) == (4 if own == len(HIDDEN) else 3)
    want = expected_summary(2500, own, rows(), load_books())
    found = {name: batch_summary(way, scope, rows()) for name, way in WAYS.items()}
    assert found == dict.fromkeys(WAYS, want)


@on_sqlite
@needs_setlimit
@pytest.mark.parametrize("authors", [100, 1000])
def test_owners_sharing_authors_read_each_key_once(authors: int, sqlite_limit: int) -> None:
    """2,500 owners over 100 authors: one query; over 1,000: two, not three."""
    make_owners(2500, authors)
    own = own_parameters(Author.objects.all())
    want = expected_summary(authors, own, Author.objects.all(), load_books())
    assert want["queries"] == 1 + math.ceil(authors / (LIMIT - own))
    assert want["queries"] == (2 if authors == 100 else 3)
    found = {name: batch_summary(way, None, Author.objects.all()) for name, way in WAYS.items()}
    assert found == dict.fromkeys(WAYS, want)


@on_sqlite
@needs_setlimit
@pytest.mark.django_db(transaction=True)
def test_aprefetch_2500_keys_in_batches_sqlite_takes() -> None:
    """The worker thread's connection, where aprefetch() queries, is lowered to 999."""
    make_owners(2500, 2500)
    found, want = {}, {}
    # Not the 200-parameter QuerySet scope: each aget compiles it (a millisecond).
    for param in SCOPES[:4]:
        make, rows = param.values
        scope = make()
        books = load_books()
        own = own_parameters(rows())

        async def work(books: list[Book] = books, scope: Any = scope) -> dict[int, Any]:
            await aprefetch(books, "author", scope=scope)
            return {book.pk: answer(await book.aget_author(scope=scope)) for book in books}  # type: ignore[attr-defined]

        got, sent, count = run_in_loop(work, limit=LIMIT)
        found[param.id] = (count, max(sent.sizes), sum(s - own for s in sent.sizes), got)
        want[param.id] = (math.ceil(2500 / (LIMIT - own)), LIMIT, 2500, reference(books, rows()))
    assert found == want


PG_OWNERS = 70_000
REFUSED = "number of parameters must be between 0 and 65535"


@on_postgres
@pytest.mark.django_db(databases=["default", "bound"])
def test_server_side_binding_takes_65535_parameters_and_no_more() -> None:
    """The limit the 70,000-owner tests are about ('default', which binds on the
    client side, has none)."""

    def select_with(parameters: int) -> list[Any]:
        with connections["bound"].cursor() as cursor:
            placeholders = ", ".join(["%s"] * parameters)
            cursor.execute(f"SELECT 1 WHERE 1 IN ({placeholders})", list(range(parameters)))
            return cursor.fetchall()

    assert select_with(PG_LIMIT) == [(1,)]
    with pytest.raises(OperationalError, match=REFUSED):
        select_with(PG_LIMIT + 1)


@on_postgres
@pytest.mark.django_db(databases=["default", "bound"])
def test_django_prefetch_of_70000_owners_fails_with_server_side_binding() -> None:
    """The motivation: Django sends all 70,000 keys in one statement, which is
    refused before a row is read (so the owners need not even be saved)."""
    owners = [Book(author_id=pk) for pk in range(1, PG_OWNERS + 1)]
    with Sent("bound") as sent, pytest.raises(OperationalError, match=REFUSED):
        prefetch_related_objects(owners, Prefetch("author", queryset=Author.objects.using("bound")))
    assert sent.sizes == [PG_OWNERS]


@on_postgres
@pytest.mark.django_db(transaction=True, databases=["default", "bound"])
def test_70000_owners_in_two_batches_with_server_side_binding() -> None:
    """prefetch() and ScopedPrefetch read 70,000 keys on 'bound' in two statements
    of at most 65,535 parameters. Counted with :class:`Sent`, one entry per
    statement run: ``CaptureQueriesContext`` would spend seconds rendering
    65,535 parameters into the SQL it logs."""
    insert_owners(PG_OWNERS)
    loads: dict[str, Callable[[list[Book]], Any]] = {
        "prefetch": lambda books: prefetch(books, "author", using="bound"),
        "ScopedPrefetch": lambda books: prefetch_related_objects(
            books, ScopedPrefetch("author", using="bound")
        ),
    }

    def summary(load: Callable[[list[Book]], Any]) -> Any:
        books = load_books()
        want = reference(books, Author.objects.all())
        try:
            with Sent("bound") as sent:
                load(books)
        except DatabaseError as exc:
            return f"{type(exc).__name__}: {exc}"
        with CaptureQueriesContext(connections["bound"]) as later:
            found = answers(books, None, using="bound")
        assert None in want.values()  # the default scope hides some
        return {
            "statements": len(sent.statements),
            "parameters": sent.sizes,
            "answers unlike one query's": sum(found[pk] != want[pk] for pk in want),
            "queries answering": len(later),
        }

    expected = {
        "statements": 2,
        "parameters": [PG_LIMIT, PG_OWNERS - PG_LIMIT],
        "answers unlike one query's": 0,
        "queries answering": 0,
    }
    assert {name: summary(load) for name, load in loads.items()} == dict.fromkeys(loads, expected)


# ============================================= 2. ScopedPrefetch, everywhere


def library() -> dict[str, Author]:
    """Two books by each of five authors, and one by nobody: a live author, a
    soft-deleted one (``Author.objects`` hides it), an inactive one, an
    unverified one and another live one."""
    publisher = factories.PublisherFactory()
    authors = {
        "live": factories.AuthorFactory(active=True, verified=True),
        "deleted": factories.AuthorFactory(deleted=True, active=True, verified=True),
        "inactive": factories.AuthorFactory(active=False, verified=True),
        "unverified": factories.AuthorFactory(active=True, verified=False),
        "other": factories.AuthorFactory(name="x-other", active=True, verified=True),
    }
    for author in authors.values():
        factories.BookFactory.create_batch(2, publisher=publisher, author=author)
    factories.BookFactory(publisher=publisher, author=None)
    return authors


def books_with(*lookups: Any) -> models.QuerySet:
    return Book.objects.order_by("pk").prefetch_related(*lookups)


@pytest.mark.parametrize(("make", "rows"), SCOPES)
def test_prefetch_related_fills_the_scoped_cache(
    make: Any, rows: Any, django_assert_num_queries: Any
) -> None:
    library()
    scope = make()
    with django_assert_num_queries(2):  # the books, then their authors in scope
        books = list(books_with(ScopedPrefetch("author", scope=scope)))
    want = reference(books, rows())
    with django_assert_num_queries(0):
        assert answers(books, scope) == want
    assert len(books) == 11


def test_hidden_authors_answer_none_from_the_prefetch(django_assert_num_queries: Any) -> None:
    authors = library()
    with django_assert_num_queries(3):
        books = list(
            books_with(ScopedPrefetch("author"), ScopedPrefetch("author", scope="active_authors"))
        )
    by_author = {book.author_id: book for book in books}
    deleted, inactive = by_author[authors["deleted"].pk], by_author[authors["inactive"].pk]
    with django_assert_num_queries(0):
        assert deleted.get_author() is None  # type: ignore[attr-defined]
        assert deleted.get_author(scope="active_authors") == authors["deleted"]  # type: ignore[attr-defined]
        assert inactive.get_author(scope="active_authors") is None  # type: ignore[attr-defined]
        assert inactive.get_author() == authors["inactive"]  # type: ignore[attr-defined]
        assert by_author[None].get_author(scope="active_authors") is None  # type: ignore[attr-defined]


def test_prefetch_related_objects(django_assert_num_queries: Any) -> None:
    library()
    books = load_books()
    with django_assert_num_queries(1):
        prefetch_related_objects(books, ScopedPrefetch("author", scope="active_authors"))
    want = reference(books, Author.all_objects.filter(active=True))
    with django_assert_num_queries(0):
        assert answers(books, "active_authors") == want


@pytest.mark.django_db(transaction=True)
def test_aprefetch_related_objects() -> None:
    library()
    books = load_books()
    _, _, count = run_in_loop(
        lambda: aprefetch_related_objects(books, ScopedPrefetch("author", scope="active_authors"))
    )
    assert count == 1
    want = reference(books, Author.all_objects.filter(active=True))
    with CaptureQueriesContext(connection) as ctx:
        assert answers(books, "active_authors") == want
    assert len(ctx) == 0


@pytest.mark.django_db(transaction=True)
def test_async_iteration_then_aget_costs_no_query() -> None:
    library()

    async def work() -> dict[int, Any]:
        found = {}
        async for book in books_with(ScopedPrefetch("author", scope="active_authors")):
            found[book.pk] = answer(await book.aget_author(scope="active_authors"))  # type: ignore[attr-defined]
        return found

    found, _, count = run_in_loop(work)
    assert count == 2  # the books and their authors; the 11 agets none
    assert found == reference(load_books(), Author.all_objects.filter(active=True))


def test_a_page_loads_only_its_rows_authors(django_assert_num_queries: Any) -> None:
    make_owners(45, 45)
    pks = list(Book.objects.order_by("pk").values_list("pk", flat=True))
    paginator = Paginator(books_with(ScopedPrefetch("author", scope="active_authors")), 20)
    # The count, the page's rows, their authors.
    with django_assert_num_queries(3), Sent() as sent:
        page = list(paginator.page(2))
    assert [book.pk for book in page] == pks[20:40]
    active = Author.all_objects.filter(active=True)
    assert keys_sent(sent.statements[-1][1], active) == sorted(book.author_id for book in page)
    want = reference(page, active)
    with django_assert_num_queries(0):
        assert answers(page, "active_authors") == want


def test_several_scoped_prefetches_and_plain_lookups_one_query_each(
    django_assert_num_queries: Any,
) -> None:
    library()
    # The books, two author scopes, the publishers; scope=False over the publishers
    # the plain lookup loaded selects every row: no query of its own.
    with django_assert_num_queries(4):
        books = list(
            books_with(
                "publisher",
                ScopedPrefetch("author", scope="active_authors"),
                ScopedPrefetch("author", scope="verified_authors"),
                ScopedPrefetch("publisher", scope=False),
            )
        )
    active = reference(books, Author.all_objects.filter(active=True))
    verified = reference(books, Author.all_objects.filter(verified=True))
    with django_assert_num_queries(0):
        assert answers(books, "active_authors") == active
        assert answers(books, "verified_authors") == verified
        for book in books:
            assert book.get_publisher(scope=False) is book.publisher  # type: ignore[attr-defined]
    assert active != verified


@pytest.mark.parametrize(
    "lookups",
    [
        pytest.param(lambda: [ScopedPrefetch("author", scope="active_authors")] * 2, id="same"),
        pytest.param(
            lambda: [ScopedPrefetch("author", scope="active_authors") for _ in range(2)],
            id="equal",
        ),
    ],
)
def test_the_same_scoped_prefetch_twice_is_one_query(
    lookups: Any, django_assert_num_queries: Any
) -> None:
    library()
    with django_assert_num_queries(2):
        books = list(books_with(*lookups()))
    with django_assert_num_queries(0):
        answers(books, "active_authors")


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_using_reads_that_alias() -> None:
    library()
    books = load_books()
    with (
        CaptureQueriesContext(connections["replica"]) as replica,
        CaptureQueriesContext(connection) as default,
    ):
        prefetch_related_objects(
            books, ScopedPrefetch("author", scope="active_authors", using="replica")
        )
        found = answers(books, "active_authors", using="replica")
    assert (len(replica), len(default)) == (1, 0)
    assert found == reference(books, Author.all_objects.filter(active=True))


def test_through_a_relation(django_assert_num_queries: Any) -> None:
    library()
    Review.objects.bulk_create(
        Review(book=book, stars=s) for book in Book.objects.all() for s in (1, 5)
    )
    with django_assert_num_queries(3), Sent() as sent:  # reviews, books, authors
        reviews = list(
            Review.objects.order_by("pk").prefetch_related(
                ScopedPrefetch("book__author", scope="active_authors")
            )
        )
    books = {review.book_id: review.book for review in reviews}
    with django_assert_num_queries(0):
        found = {
            review.pk: answer(review.book.get_author(scope="active_authors"))  # type: ignore[attr-defined]
            for review in reviews
        }
        assert all(review.book is books[review.book_id] for review in reviews)
    # Each author once, though two reviews of each of two books point at it.
    active = Author.all_objects.filter(active=True)
    keys = keys_sent(sent.statements[2][1], active)
    assert keys == sorted({b.author_id for b in books.values() if b.author_id})
    want = reference(list(books.values()), active)
    assert found == {review.pk: want[review.book_id] for review in reviews}
    assert len(reviews) == 22


BAD_SCOPES: list[Any] = [
    pytest.param(lambda: "nope", id="unknown-name"),
    pytest.param(lambda: ["active_authors", "nope"], id="list-with-unknown"),
    pytest.param(lambda: Book.objects.all(), id="queryset-of-books"),
]


@pytest.mark.parametrize("make", BAD_SCOPES)
def test_a_bad_scope_raises_before_the_prefetch_query(
    make: Any, django_assert_num_queries: Any
) -> None:
    library()
    books = load_books()
    with django_assert_num_queries(0), pytest.raises(InvalidScope, match=r"Book\.author"):
        prefetch_related_objects(books, ScopedPrefetch("author", scope=make()))
    with django_assert_num_queries(1), pytest.raises(InvalidScope, match=r"Book\.author"):
        list(books_with(ScopedPrefetch("author", scope=make())))  # only the books' query ran


@pytest.mark.parametrize(
    ("model", "lookup"),
    [
        pytest.param(Review, "book", id="plain-ForeignKey"),
        pytest.param(Book, "reviews", id="reverse-relation"),
    ],
)
def test_a_last_part_that_is_not_a_belongsto_field_is_a_clear_type_error(
    model: type[models.Model], lookup: str, django_assert_num_queries: Any
) -> None:
    Review.objects.create(book=factories.BookFactory(author=factories.AuthorFactory()))
    owners = list(model._default_manager.all())
    message = rf"ScopedPrefetch\('{lookup}'\) .*not a BelongsToField"
    with django_assert_num_queries(0), pytest.raises(TypeError, match=message):
        prefetch_related_objects(owners, ScopedPrefetch(lookup))
    with django_assert_num_queries(1), pytest.raises(TypeError, match=message):
        list(model._default_manager.prefetch_related(ScopedPrefetch(lookup)))


# ======================================================= 3. one object per row


IDENTITY_WAYS: list[Any] = [
    pytest.param(
        lambda: by_prefetch("all_objects"),
        lambda b: b.get_author(scope="all_objects"),
        id="prefetch",
    ),
    pytest.param(
        lambda: by_prefetch_related_objects("all_objects"),
        lambda b: b.get_author(scope="all_objects"),
        id="ScopedPrefetch-objects",
    ),
    pytest.param(
        lambda: by_prefetch_related("all_objects"),
        lambda b: b.get_author(scope="all_objects"),
        id="ScopedPrefetch-queryset",
    ),
    pytest.param(
        lambda: list(books_with("author")), lambda b: b.author, id="django-prefetch_related"
    ),
]


@pytest.mark.parametrize(("load", "get"), IDENTITY_WAYS)
def test_owners_of_one_author_share_one_instance(
    load: Any, get: Any, django_assert_num_queries: Any
) -> None:
    library()
    books = load()
    shared: dict[int, set[int]] = {}
    with django_assert_num_queries(0):
        for book in books:
            if book.author_id is not None:
                shared.setdefault(book.author_id, set()).add(id(get(book)))
    assert len(shared) == 5
    assert all(len(objects) == 1 for objects in shared.values()), shared


# ============================================================= 4. pages


class ActiveAuthorBookSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Book
        fields = ("title", "author")

    def get_author(self, obj: Book) -> str | None:
        found = obj.get_author(scope="active_authors")  # type: ignore[attr-defined]
        return None if found is None else found.name


class TwentyAPage(pagination.PageNumberPagination):
    page_size = 20


class PlainBookList(generics.ListAPIView):
    serializer_class = ActiveAuthorBookSerializer
    pagination_class = TwentyAPage

    def get_queryset(self) -> models.QuerySet:
        return Book.objects.order_by("pk")


class ScopedBookList(PlainBookList):
    def get_queryset(self) -> models.QuerySet:
        return (
            super()
            .get_queryset()
            .prefetch_related(ScopedPrefetch("author", scope="active_authors"))
        )


@pytest.mark.parametrize(
    ("view", "queries"),
    [
        # The count, the page's books, their authors.
        pytest.param(ScopedBookList, 3, id="ScopedPrefetch"),
        # The count, the page's books, one get_author() per row.
        pytest.param(PlainBookList, 2 + 20, id="without"),
    ],
)
@pytest.mark.parametrize("page", [1, 2])
def test_drf_paginated_list(
    view: Any, queries: int, page: int, django_assert_num_queries: Any
) -> None:
    make_owners(45, 45)
    request = APIRequestFactory().get("/books/", {"page": page})
    with django_assert_num_queries(queries):
        response = view.as_view()(request)
    assert response.status_code == 200
    assert response.data["count"] == 45
    books = load_books()[(page - 1) * 20 : page * 20]
    names = dict(Author.all_objects.filter(active=True).values_list("pk", "name"))
    assert response.data["results"] == [
        {"title": book.title, "author": names.get(book.author_id)} for book in books
    ]
    # Each page shows inactive authors as null, and active ones.
    assert {row["author"] is None for row in response.data["results"]} == {True, False}


batch_admin = admin.AdminSite(name="batch_admin")


@admin.register(Book, site=batch_admin)
class ScopedBookAdmin(admin.ModelAdmin):
    list_display = ("title", "active_author")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(ScopedPrefetch("author", scope="active_authors"))
        )

    @admin.display(description="active author")
    def active_author(self, book: Book) -> str:
        found = book.get_author(scope="active_authors")  # type: ignore[attr-defined]
        return "-" if found is None else found.name


# ROOT_URLCONF of the admin test below.
urlpatterns = [path("batch-admin/", batch_admin.urls)]

ROW = re.compile(
    r'<th class="field-title"><a href="[^"]*">([^<]+)</a></th>'
    r'<td class="field-active_author">([^<]*)</td>'
)


@override_settings(ROOT_URLCONF=__name__)
def test_admin_changelist_query_count_does_not_grow_with_rows(
    admin_client: Any, django_assert_num_queries: Any
) -> None:
    def changelist() -> dict[str, str]:
        # 2 (the session, the user) + 2 (the changelist counts the filtered and
        # the full result) + 1 (the page of books) + 1 (their authors, active).
        with django_assert_num_queries(6):
            response = admin_client.get("/batch-admin/tests/book/")
        assert response.status_code == 200
        return dict(ROW.findall(response.content.decode()))

    def expected() -> dict[str, str]:
        names = dict(Author.all_objects.filter(active=True).values_list("pk", "name"))
        return {book.title: names.get(book.author_id, "-") for book in load_books()}

    make_owners(5, 5)
    assert changelist() == expected()
    publisher, authors = Publisher.objects.get(), list(Author.all_objects.all())
    Book.objects.bulk_create(
        Book(title=f"More {i}", publisher=publisher, author=authors[i % 5]) for i in range(10)
    )
    assert Book.objects.count() == 15
    rows = changelist()
    assert rows == expected()
    assert "-" in rows.values()


# ================================================ 5. only what nothing answers


def test_prefetch_reads_only_unanswered_keys_and_refreshes_nothing(
    django_assert_num_queries: Any,
) -> None:
    publisher = factories.PublisherFactory()
    authors = [factories.AuthorFactory(active=i != 1) for i in range(6)]
    for author in [*authors, None, None]:
        factories.BookFactory(publisher=publisher, author=author)
    books = load_books()
    kept = books[0].get_author(scope="active_authors")  # type: ignore[attr-defined]
    assert kept == authors[0]
    assert books[1].get_author(scope="active_authors") is None  # type: ignore[attr-defined]
    # The rows change: cached answers must stay as they were read.
    Author.all_objects.update(name="renamed", active=True)

    with django_assert_num_queries(1), Sent() as sent:
        prefetch(books, "author", scope="active_authors")
    # Neither the answered books' keys nor the null ones were read.
    keys = keys_sent(sent.statements[0][1], Author.all_objects.filter(active=True))
    assert keys == [a.pk for a in authors[2:]]
    with django_assert_num_queries(0):
        assert books[0].get_author(scope="active_authors") is kept  # type: ignore[attr-defined]
        assert kept.name != "renamed"
        assert books[1].get_author(scope="active_authors") is None  # type: ignore[attr-defined]
        assert (
            [answer(b.get_author(scope="active_authors")) for b in books[2:6]]
            == [  # type: ignore[attr-defined]
                (a.pk, "renamed") for a in authors[2:]
            ]
        )
        assert [b.get_author(scope="active_authors") for b in books[6:]] == [None, None]  # type: ignore[attr-defined]

    with django_assert_num_queries(0):  # nothing left
        prefetch(books, "author", scope="active_authors")
        prefetch(books[6:], "author", scope="verified_authors")  # null keys only


@on_sqlite
@needs_setlimit
@needs_fetch_modes
def test_fetch_peers_of_2500_books_in_batches_sqlite_takes(
    sqlite_limit: int, django_assert_num_queries: Any
) -> None:
    """The first get on any peer loads the scope for all 2,500, 999 keys at most
    a statement (``test_2500_distinct_keys_go_in_batches_sqlite_takes`` checks
    the same for every scope, from the first peer)."""
    make_owners(2500, 2500)
    books = load_books(fetch_mode=models.FETCH_PEERS)  # type: ignore[attr-defined]
    active = Author.all_objects.filter(active=True)
    own = own_parameters(active)
    with django_assert_num_queries(math.ceil(2500 / (LIMIT - own))), Sent() as sent:
        middle = books[1234].get_author(scope="active_authors")  # type: ignore[attr-defined]
    assert max(sent.sizes) <= LIMIT
    want = reference(books, active)
    with django_assert_num_queries(0):
        assert answers(books, "active_authors") == want
    assert answer(middle) == want[books[1234].pk]
