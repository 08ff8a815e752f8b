"""Read your own writes on a lagging replica: after ``set_<name>()`` /
``create_<name>()`` (and their async twins) the reads of that relation for that
instance go where writes go, against a real PostgreSQL hot standby.

``standby`` (testproject/test_settings.py, from ``BELONGSTO_STANDBY_URL``) is a
streaming hot standby of ``default`` that replays the primary's WAL 2 s late
(``.ci/postgres``): a row committed on ``default`` is invisible there for about
2 s. :class:`PrimaryStandbyRouter` reads from ``standby`` and writes to
``default``. Each test writes, then makes its calls at once, inside that lag
window, and checks with :func:`assert_still_lagging` that the window was still
open when the calls were done, so that no test passes vacuously.

The tests commit (``transaction=True``): the standby only sees committed rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections, models, transaction
from django.db.models.signals import pre_delete, pre_save
from django.test import override_settings

import belongsto_ext
from tests import factories, helpers
from tests.markers import needs_fetch_modes
from tests.models import Author, Book

T = TypeVar("T")

ALIASES = ("default", "standby")
REQUIRED = os.environ.get("BELONGSTO_REQUIRE_STANDBY") == "1"


def _unavailable() -> str | None:
    """Why the standby tests cannot run here, or None."""
    if not os.environ.get("BELONGSTO_STANDBY_URL"):
        return (
            "BELONGSTO_STANDBY_URL is not set: there is no hot standby to read from "
            "(bash .ci/postgres start DIR && . DIR/env starts one)"
        )
    vendors = {alias: connections[alias].vendor for alias in ALIASES}
    if set(vendors.values()) != {"postgresql"}:
        return f"the standby tests need PostgreSQL on both aliases, not {vendors}"
    return None


UNAVAILABLE = _unavailable()
if UNAVAILABLE is not None and not REQUIRED:
    pytest.skip(UNAVAILABLE, allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True, databases=list(ALIASES))

# How long the standby may take to replay what the primary wrote (it waits 2 s).
CATCH_UP_SECONDS = 15.0


class PrimaryStandbyRouter:
    """Reads go to the standby, writes to the primary: one database, so
    relations between objects of either alias are allowed."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str:
        return "standby"

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        return {obj1._state.db, obj2._state.db} <= set(ALIASES)


# ------------------------------------------------------------------ the standby


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


# PostgreSQL's WAL layout (initdb's defaults): 8 kB pages, 16 MB segments, and
# the page headers at their start (a long one on a segment's first page).
_WAL_PAGE, _WAL_SEGMENT = 8192, 16 * 1024 * 1024
_SHORT_HEADER, _LONG_HEADER = 24, 40


def _primary_wal_end() -> int:
    """The LSN that every commit on the primary so far ends at or before.

    The insert position, not ``pg_current_wal_lsn()``: ``.ci/postgres`` commits
    asynchronously (``synchronous_commit = off``), so just after a commit the
    write position can still be short of it. At the start of a page the insert
    position points past the page header, where no record ends: the last record
    ended at the page boundary.
    """
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        end = _lsn(cursor.fetchone()[0])
    if end % _WAL_SEGMENT == _LONG_HEADER:
        return end - _LONG_HEADER
    if end % _WAL_PAGE == _SHORT_HEADER:
        return end - _SHORT_HEADER
    return end


def wait_for_standby(timeout: float = CATCH_UP_SECONDS) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = _primary_wal_end()
    deadline = time.monotonic() + timeout
    standby = connections["standby"]
    replayed: str | None = None
    while True:
        try:
            with standby.cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
                replayed = cursor.fetchone()[0]
        except OperationalError as exc:  # the test database is not there yet
            standby.close()
            replayed = f"none yet ({exc})".strip()
        else:
            if replayed is not None and _lsn(replayed) >= target:
                return
        if time.monotonic() > deadline:
            pytest.fail(
                f"The standby ({standby.settings_dict['HOST']}:{standby.settings_dict['PORT']}) "
                f"has not replayed the primary's WAL up to {target >> 32:X}/{target & 0xFFFFFFFF:X} "
                f"after {timeout:.0f} s: last replayed {replayed}. Is it streaming? "
                f"(see the logs in the .ci/postgres directory)",
                pytrace=False,
            )
        time.sleep(0.05)


def on_standby(obj: models.Model) -> bool:
    """Whether the standby has replayed ``obj``'s row yet (soft-deleted or not)."""
    return type(obj)._base_manager.using("standby").filter(pk=obj.pk).exists()


def assert_still_lagging(*objs: models.Model) -> None:
    """Fail if the standby already holds any of ``objs``.

    Called after a test's calls: rows only ever appear on the standby, so if it
    still lacks them now, every call before ran inside the lag window. If the
    window closed first (a slow machine), the test proves nothing: fail, never pass.
    """
    replayed = [obj for obj in objs if on_standby(obj)]
    if replayed:
        pytest.fail(
            f"The standby replayed {replayed!r} before the test's calls were done: the "
            f"2 s lag window closed too early (a slow or loaded machine?), so the calls "
            f"did not run against a lagging replica. Rerun; this is not a library failure.",
            pytrace=False,
        )


@pytest.fixture(scope="module", autouse=True)
def _standby_caught_up(django_db_setup: None, django_db_blocker: Any) -> None:
    """Fail on a CI leg without a standby; else wait once until the standby has
    replayed the creation of the test database and its tables."""
    if UNAVAILABLE is not None:
        pytest.fail(f"BELONGSTO_REQUIRE_STANDBY=1, but {UNAVAILABLE}.", pytrace=False)
    with django_db_blocker.unblock():
        wait_for_standby(timeout=2 * CATCH_UP_SECONDS)


@pytest.fixture(autouse=True)
def _nothing_written_through_the_standby() -> Iterator[None]:
    """In every test (setup included): the standby gets SELECTs only, and no
    model is saved or deleted with ``using="standby"``."""
    through: list[str] = []

    def record(sender: type[models.Model], using: str, **kwargs: Any) -> None:
        if using == "standby":
            through.append(f"{sender.__name__} {kwargs['instance']!r}")

    for signal in (pre_save, pre_delete):
        signal.connect(record, weak=False, dispatch_uid="test_standby.through")
    try:
        with sent() as queries:
            yield
    finally:
        for signal in (pre_save, pre_delete):
            signal.disconnect(dispatch_uid="test_standby.through")
    assert [verb for verb in queries["standby"] if verb != "SELECT"] == []
    assert through == []


@pytest.fixture(autouse=True)
def _router() -> Iterator[None]:
    with override_settings(DATABASE_ROUTERS=[PrimaryStandbyRouter()]):
        yield


@pytest.fixture(autouse=True)
def _flush_replays_after_the_next_test() -> Iterator[None]:
    """Keep the flush after this test from blocking the next test's reads on the standby.

    pytest-django TRUNCATEs the tables on default after each test. The standby
    takes the TRUNCATE's locks as soon as it receives them but releases them only
    when it replays the commit, 2 s later: meanwhile every read there waits, and
    the next test's lag window would be over. The standby replays in order and
    holds back only commits: a commit just before the flush keeps it from taking
    those locks for 2 s, by when the next test's calls are long done.
    """
    yield
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()")  # an xid: a commit record


# ---------------------------------------------------------------- capturing


# ``{alias: [statement verb, ...]}`` for the queries sent inside a ``with sent()``
# block (transaction control left out), and what it holds when ``verbs`` went to
# ``alias`` alone: tests.helpers.sent and only, for this module's aliases.
sent = functools.partial(helpers.sent, ALIASES)
only = functools.partial(helpers.only, ALIASES)


@contextlib.asynccontextmanager
async def worker_sent() -> AsyncIterator[dict[str, list[str]]]:
    """:func:`sent` for the queries ``sync_to_async`` code runs: the async ORM and
    the async twins query in Django's worker thread, on its own connections."""
    context = sent()
    result = await sync_to_async(context.__enter__)()
    try:
        yield result
    finally:
        await sync_to_async(context.__exit__)(None, None, None)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` in a fresh event loop; close the worker thread's connections
    after. The worker thread too sends the standby nothing but SELECTs."""

    async def wrapper() -> T:
        try:
            async with worker_sent() as queries:
                result = await main()
        finally:
            await sync_to_async(connections.close_all)()
        assert [verb for verb in queries["standby"] if verb != "SELECT"] == []
        return result

    return asyncio.run(wrapper())


NOTHING = {alias: [] for alias in ALIASES}


# -------------------------------------------------------------------- tests


def test_the_standby_lags_behind_the_primary() -> None:
    with connections["standby"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True  # a real hot standby, not a second primary
    author = factories.AuthorFactory()  # committed on default
    assert not on_standby(author)
    wait_for_standby()
    assert on_standby(author)


def test_create_then_get_reads_the_primary_in_every_scope() -> None:
    book = factories.BookFactory()
    author = book.create_author(name="Fresh", active=True)
    with sent() as routed:
        found = book.get_author()
    with sent() as active:
        found_active = book.get_author(scope="active_authors")
    with sent() as base:
        found_base = book.get_author(scope=False)
    fresh = Book.objects.using("default").get(pk=book.pk)
    with sent() as fresh_queries:
        fresh_found = fresh.get_author()
    assert_still_lagging(author)

    assert (found, found_active, found_base) == (author, author, author)
    assert (found._state.db, found_active._state.db) == ("default", "default")
    assert routed == active == only("default", "SELECT")
    # The base manager selects every row: the object create_author() set answers.
    assert base["standby"] == []
    assert set(base["default"]) <= {"SELECT"}
    # A fresh instance of the same row routes as before: to the lagging standby.
    assert fresh.author_id == author.pk
    assert fresh_found is None
    assert fresh_queries == only("standby", "SELECT")


@pytest.mark.parametrize("by", ["instance", "key"])
def test_set_then_get_and_the_attribute_read_the_primary(by: str) -> None:
    book = factories.BookFactory(author=factories.AuthorFactory())
    new_author = factories.AuthorFactory()  # committed on default only, for now
    book.set_author(new_author if by == "instance" else new_author.pk)
    with sent() as attribute:
        via_attribute = book.author
    with sent() as routed:
        found = book.get_author()
    with sent() as active:
        found_active = book.get_author(scope="active_authors")
    assert_still_lagging(new_author)

    assert via_attribute == found == found_active == new_author
    # set_author(obj) keeps the object given; set_author(key) reads it, where writes go.
    assert attribute == (NOTHING if by == "instance" else only("default", "SELECT"))
    assert via_attribute._state.db == "default"
    assert routed == active == only("default", "SELECT")


def test_prefetch_after_create_reads_the_primary_in_one_query() -> None:
    # Loaded, its key never written by this instance: it routes as usual.
    control_author = factories.AuthorFactory()
    control = Book.objects.using("default").get(pk=factories.BookFactory(author=control_author).pk)
    books = factories.BookFactory.create_batch(3)
    authors = [book.create_author(name=f"Fresh {i}") for i, book in enumerate(books)]
    with sent() as loading:
        belongsto_ext.prefetch([*books, control], "author")
    with sent() as answering:
        found = [book.get_author() for book in books]
        control_found = control.get_author()
    assert_still_lagging(*authors, control_author)

    assert loading == {"default": ["SELECT"], "standby": ["SELECT"]}
    assert answering == NOTHING
    assert found == authors
    assert [author._state.db for author in found] == ["default"] * 3
    assert control_found is None  # the standby has not replayed the control's author yet


def test_create_inside_atomic_reads_the_uncommitted_row_on_the_primary() -> None:
    """As in an ATOMIC_REQUESTS view: the new row is only in the open transaction."""
    book = factories.BookFactory()
    with transaction.atomic():
        author = book.create_author(name="In the request")
        with sent() as routed:
            found = book.get_author()
        fresh = Book.objects.using("default").get(pk=book.pk)
        with sent() as fresh_queries:
            fresh_found = fresh.get_author()
    assert found == author
    assert routed == only("default", "SELECT")
    assert fresh.author_id == author.pk
    assert fresh_found is None
    assert fresh_queries == only("standby", "SELECT")


def _assign_another_key(book: Book, other: Author) -> None:
    book.author_id = other.pk


def _assign_another_object(book: Book, other: Author) -> None:
    book.author = other


def _refresh_from_the_primary(book: Book, other: Author) -> None:
    book.refresh_from_db(using="default")  # the key it wrote, assigned again


def _refresh(book: Book, other: Author) -> None:
    book.refresh_from_db()  # pinned: reads the primary, the key it wrote


def _read_the_standby_explicitly(book: Book, other: Author) -> None:
    book.get_author(using="standby")


def _read_the_primary_explicitly(book: Book, other: Author) -> None:
    book.get_author(using="default")


@pytest.mark.parametrize(
    "end_pin", [_assign_another_key, _assign_another_object], ids=lambda f: f.__name__[1:]
)
def test_the_pin_ends_and_get_reads_the_standby_again(
    end_pin: Callable[[Book, Author], None],
) -> None:
    """Both authors are on the primary only: read on the standby, the answer is None."""
    book = factories.BookFactory()
    author = book.create_author(name="Fresh")
    other = factories.AuthorFactory()
    end_pin(book, other)
    with sent() as queries:
        found = book.get_author()
    assert_still_lagging(author, other)

    assert book.author_id == other.pk
    assert found is None
    assert queries == only("standby", "SELECT")


@pytest.mark.parametrize(
    "keep_pin",
    [
        _refresh_from_the_primary,
        _refresh,
        _read_the_standby_explicitly,
        _read_the_primary_explicitly,
    ],
    ids=lambda f: f.__name__[1:],
)
def test_the_pin_survives_reads_and_refreshes_of_the_same_key(
    keep_pin: Callable[[Book, Author], None],
) -> None:
    """A read with an explicit ``using=`` answers from there, and the next routed
    read still goes where the key was written."""
    book = factories.BookFactory()
    author = book.create_author(name="Fresh")
    other = factories.AuthorFactory()
    keep_pin(book, other)
    with sent() as queries:
        found = book.get_author()
    assert_still_lagging(author)

    assert book.author_id == author.pk
    assert found == author
    assert queries == only("default", "SELECT")


def test_refresh_from_db_of_a_pinned_book_reads_the_primary() -> None:
    """Read on the standby, refresh_from_db() would give the old author back, and
    the next save() would write it: a pinned instance refreshes from the primary."""
    old = factories.AuthorFactory()
    pk = factories.BookFactory(author=old).pk
    wait_for_standby()
    book = Book.objects.get(pk=pk)  # through the router, as a view reads it: the standby
    author = book.create_author(name="Fresh")
    with sent() as refreshing:
        book.refresh_from_db()
    with sent() as queries:
        found = book.get_author()
    book.title = "Edited"
    book.save()
    assert_still_lagging(author)

    assert refreshing == only("default", "SELECT")
    assert book.author_id == author.pk
    assert found == author
    assert queries == only("default", "SELECT")
    assert Book.objects.using("default").get(pk=pk).author_id == author.pk


def test_an_unpinned_refresh_reads_the_standby() -> None:
    old = factories.AuthorFactory()
    pk = factories.BookFactory(author=old).pk
    wait_for_standby()
    book = Book.objects.get(pk=pk)
    with sent() as refreshing:
        book.refresh_from_db()
    assert refreshing == only("standby", "SELECT")
    assert book.author_id == old.pk


def _set_without_save_then_save(book: Book, author: Author) -> None:
    book.set_author(author, save=False)
    book.save()


def _assign_then_save(book: Book, author: Author) -> None:
    book.author_id = author.pk
    book.save()


@pytest.mark.parametrize(
    "write", [_set_without_save_then_save, _assign_then_save], ids=lambda f: f.__name__[1:]
)
def test_a_plain_save_of_a_new_key_pins_it(write: Callable[[Book, Author], None]) -> None:
    """No None from the lagging standby is read, nor cached past the lag."""
    book = factories.BookFactory()
    author = factories.AuthorFactory()  # on the primary only, for now
    write(book, author)
    with sent() as queries:
        found = book.get_author()
    assert_still_lagging(author)
    assert found == author
    assert queries == only("default", "SELECT")
    wait_for_standby()
    assert book.get_author() == author


def test_acreate_then_aget_reads_the_primary() -> None:
    book = factories.BookFactory()

    async def main() -> tuple[Any, ...]:
        author = await book.acreate_author(name="Async", active=True)
        async with worker_sent() as routed:
            found = await book.aget_author()
            found_active = await book.aget_author(scope="active_authors")
        fresh = await Book.objects.using("default").aget(pk=book.pk)
        async with worker_sent() as fresh_queries:
            fresh_found = await fresh.aget_author()
        return author, found, found_active, routed, fresh_found, fresh_queries

    author, found, found_active, routed, fresh_found, fresh_queries = run(main)
    assert_still_lagging(author)

    assert found == found_active == author
    assert routed == {"default": ["SELECT", "SELECT"], "standby": []}
    assert fresh_found is None
    assert fresh_queries == only("standby", "SELECT")


def test_aset_then_aget_reads_the_primary() -> None:
    book = factories.BookFactory(author=factories.AuthorFactory())

    async def main() -> tuple[Any, ...]:
        new_author = await Author.objects.acreate(name="Async")  # routed: on default
        async with worker_sent() as writing:
            await book.aset_author(new_author.pk)
        async with worker_sent() as routed:
            found = await book.aget_author()
        return new_author, writing, found, routed

    new_author, writing, found, routed = run(main)
    assert_still_lagging(new_author)

    assert writing == only("default", "UPDATE")
    assert found == new_author
    assert found._state.db == "default"
    assert routed == only("default", "SELECT")


@needs_fetch_modes
def test_the_attribute_of_a_book_loaded_with_its_peers_reads_the_primary() -> None:
    """Django 6.1's FETCH_PEERS loads ``book.author`` for all the peers at once: the
    key this book just wrote must still be read where writes go."""
    created = factories.BookFactory.create_batch(2, author=factories.AuthorFactory())
    books = list(
        Book.objects.using("default")
        .fetch_mode(models.FETCH_PEERS)  # type: ignore[attr-defined]
        .filter(pk__in=[book.pk for book in created])
        .order_by("pk")
    )
    new_author = factories.AuthorFactory()
    books[0].set_author(new_author.pk)
    with sent() as queries:
        via_attribute = books[0].author
    assert_still_lagging(new_author)

    assert via_attribute == new_author, f"book.author read {via_attribute!r}; queries: {queries}"
    assert via_attribute._state.db == "default"
    assert "SELECT" in queries["default"]


# ------------------------------------------------------ BelongsToAnyField


@pytest.mark.parametrize("how", ["set an instance", "set a model and a key", "create"])
def test_a_polymorphic_write_then_get_and_the_attribute_read_the_primary(how: str) -> None:
    """BelongsToAnyField shares the pin: after set_/create_, its reads of that
    target go where writes go, in every scope; another instance routes as usual."""
    from django.contrib.contenttypes.models import ContentType

    from tests.models import AnyComment, AnyPost

    comment = factories.AnyCommentFactory(target=factories.AnyPostFactory())
    ContentType.objects.get_for_model(AnyPost)  # cached: the content type is not the read
    if how == "create":
        post = comment.create_target(AnyPost, title="Fresh")
    else:
        post = factories.AnyPostFactory()  # committed on default only, for now
        comment.set_target(
            post if how == "set an instance" else AnyPost,
            *(() if how == "set an instance" else (post.pk,)),
        )
    with sent() as routed:
        found = comment.get_target(scope="published_posts")
    with sent() as attribute:
        comment._state.fields_cache.pop(AnyComment._meta.get_field("target").cache_name, None)
        via_attribute = comment.target
    other = AnyComment.objects.using("default").get(pk=comment.pk)
    with sent() as elsewhere:
        other_found = other.get_target(scope="published_posts")
    assert_still_lagging(post)

    assert found == via_attribute == post
    assert routed == only("default", "SELECT")
    assert attribute == only("default", "SELECT")
    assert other_found is None  # the standby has not replayed the post yet
    assert elsewhere == only("standby", "SELECT")
