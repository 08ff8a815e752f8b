"""The async twins, awaited in a real event loop against the test database.

Django runs ``sync_to_async`` code in one worker thread (outside any
``async_to_sync``), and refuses queries on the event loop's thread
(``SynchronousOnlyOperation``): ``worker_queries()`` counts the queries there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, IntegrityError

from belongsto_ext import InvalidScope
from tests import factories
from tests.helpers import memory_state, row_state, run, worker_queries
from tests.models import Author, Book, Profile, Publisher

pytestmark = pytest.mark.django_db(transaction=True)


# -------------------------------------------------------------------- get


def test_aget_reads_in_one_query_and_caches() -> None:
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)

    async def main() -> None:
        async with worker_queries() as first:
            assert await book.aget_author() == author
        async with worker_queries() as again:
            assert await book.aget_author() == author
            assert await book.aget_author(scope=True) == author
        assert (len(first), len(again)) == (1, 0)

    run(main)


def test_sync_get_in_the_same_loop_is_refused() -> None:
    """Control: the loop is real, so the sync method cannot query there."""
    book = Book.objects.get(pk=factories.BookFactory(author=factories.AuthorFactory()).pk)

    async def main() -> None:
        with pytest.raises(SynchronousOnlyOperation):
            book.get_author()

    run(main)


def test_aget_null_and_held_objects_make_no_query() -> None:
    publisher = factories.PublisherFactory()
    factories.BookFactory(publisher=publisher)
    author = factories.AuthorFactory()
    held = Book.objects.select_related("author", "publisher").get(
        pk=factories.BookFactory(author=author).pk
    )
    null = Book.objects.filter(author__isnull=True).first()

    async def main() -> None:
        async with worker_queries() as captured:
            assert await null.aget_author() is None
            assert await null.aget_author(scope="verified_authors") is None
            assert await held.aget_publisher() is held.publisher  # unfiltered default manager
            assert await held.aget_author(scope=False) is held.author
        assert captured == []

    run(main)


def test_aget_scopes() -> None:
    gone = factories.AuthorFactory(deleted=True, active=False)
    book = Book.objects.get(pk=factories.BookFactory(author=gone).pk)

    async def main() -> None:
        async with worker_queries() as captured:
            assert await book.aget_author() is None  # the soft-delete default scope
            assert await book.aget_author(scope="active_authors") is None
            assert await book.aget_author(scope=False) == gone
            assert await book.aget_author(scope=Author.all_objects.filter(name=gone.name)) == gone
        assert len(captured) == 4

    run(main)


@pytest.mark.parametrize(
    "scope", ["nope", "delete", "_base_manager", "", ["active_authors", "nope"], 3]
)
def test_aget_invalid_scope(scope: Any) -> None:
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    null = Book.objects.get(pk=factories.BookFactory().pk)

    async def main() -> None:
        async with worker_queries() as captured:
            for owner in (book, null):
                with pytest.raises(InvalidScope, match="Author"):
                    await owner.aget_author(scope=scope)
        assert captured == []

    run(main)


def test_aget_with_a_deferred_key() -> None:
    author = factories.AuthorFactory()
    pk = factories.BookFactory(author=author).pk

    async def main() -> None:
        book = await Book.objects.only("title").aget(pk=pk)
        assert await book.aget_author() == author

    run(main)


def test_concurrent_agets() -> None:
    authors = factories.AuthorFactory.create_batch(5)
    pks = [factories.BookFactory(author=a).pk for a in authors]

    async def main() -> list[Author | None]:
        books = [b async for b in Book.objects.filter(pk__in=pks).order_by("pk")]
        return list(await asyncio.gather(*(b.aget_author() for b in books)))

    assert run(main) == authors


# -------------------------------------------------------------------- set


def test_aset_instance_key_and_none() -> None:
    book = factories.BookFactory()
    first, second = factories.AuthorFactory.create_batch(2)

    async def main() -> None:
        async with worker_queries() as captured:
            await book.aset_author(first)
        # One UPDATE, in a transaction of its own (the worker's connection has none open).
        assert [q.split(None, 1)[0] for q in captured] == ["BEGIN", "UPDATE", "COMMIT"]
        async with worker_queries() as captured:
            assert await book.aget_author(scope=False) is first  # held, no query
        assert captured == []
        await book.aset_author(str(second.pk))
        assert book.author_id == second.pk

    run(main)
    assert row_state(book)["author_id"] == second.pk
    run(lambda: book.aset_author(None))
    assert row_state(book)["author_id"] is None


def test_aset_without_save_makes_no_query() -> None:
    book = factories.BookFactory()
    author = factories.AuthorFactory()
    before = row_state(book)

    async def main() -> None:
        async with worker_queries() as captured:
            await book.aset_author(author, save=False)
            assert await book.aget_author(scope=False) is author
        assert captured == []

    run(main)
    assert book.author_id == author.pk
    assert row_state(book) == before


@pytest.mark.parametrize(
    ("value", "error"),
    [("abc", ValueError), (1.5, ValueError), ([1], TypeError), (object(), TypeError)],
)
def test_aset_refuses_bad_input_and_changes_nothing(value: Any, error: type[Exception]) -> None:
    book = factories.BookFactory(author=factories.AuthorFactory())
    book.get_author()
    before = (row_state(book), memory_state(book))

    async def main() -> None:
        with pytest.raises(error, match=r"Book\.author"):
            await book.aset_author(value)

    run(main)
    assert (row_state(book), memory_state(book)) == before


def test_aset_unsaved_and_wrong_model_refused() -> None:
    book = factories.BookFactory()
    before = (row_state(book), memory_state(book))

    async def main() -> None:
        with pytest.raises(ValueError, match="unsaved"):
            await book.aset_author(Author(name="unsaved"))
        with pytest.raises(TypeError, match="Publisher"):
            await book.aset_author(book.publisher)
        with pytest.raises(ValueError, match="nullable"):
            await book.aset_publisher(None)

    run(main)
    assert (row_state(book), memory_state(book)) == before


def test_aset_failed_save_restores_the_instance() -> None:
    book = factories.BookFactory(author=factories.AuthorFactory())
    book.get_author()
    before = (row_state(book), memory_state(book))

    async def main() -> None:
        with pytest.raises(IntegrityError):
            await book.aset_author(999_999)

    run(main)
    assert (row_state(book), memory_state(book)) == before


# ----------------------------------------------------------------- create


def test_acreate_creates_and_sets() -> None:
    book = factories.BookFactory()

    async def main() -> Author:
        return await book.acreate_author({"name": "Async"}, slug="async")

    made = run(main)
    assert isinstance(made, Author) and made.pk is not None
    assert Author.objects.get(pk=made.pk).slug == "async"
    assert row_state(book)["author_id"] == made.pk
    assert book.get_author(scope=False) is made


def test_acreate_without_save_writes_only_the_target() -> None:
    book = factories.BookFactory()
    before = row_state(book)
    made = run(lambda: book.acreate_author(name="Unsaved link", save=False))
    assert Author.all_objects.filter(pk=made.pk).exists()
    assert book.author_id == made.pk
    assert row_state(book) == before


def test_acreate_rolls_back_the_target_when_the_owner_save_fails() -> None:
    book = factories.BookFactory()
    Book.objects.filter(pk=book.pk).delete()  # the UPDATE will match no row
    unsaved = Book(title="no publisher")  # the INSERT will violate NOT NULL
    states = [memory_state(book), memory_state(unsaved)]

    async def main() -> None:
        with pytest.raises(DatabaseError):
            await book.acreate_author(name="Rolled back 1")
        with pytest.raises(IntegrityError):
            await unsaved.acreate_author(name="Rolled back 2")

    run(main)
    assert not Author.all_objects.filter(name__startswith="Rolled back").exists()
    assert [memory_state(book), memory_state(unsaved)] == states
    assert Book.objects.count() == 0


def test_acreate_unknown_field_creates_nothing() -> None:
    book = factories.BookFactory()
    before = (row_state(book), memory_state(book), Author.all_objects.count())

    async def main() -> None:
        with pytest.raises(TypeError):
            await book.acreate_author(name="x", no_such_field=1)

    run(main)
    assert (row_state(book), memory_state(book), Author.all_objects.count()) == before


# ------------------------------------------------------------- one-to-one


def test_one_to_one_async() -> None:
    profile = factories.ProfileFactory()
    author = factories.AuthorFactory()

    async def main() -> None:
        await profile.aset_author(author)
        async with worker_queries() as captured:
            assert await profile.aget_author(scope=False) is author
        assert captured == []
        fresh = await Profile.objects.aget(pk=profile.pk)
        assert await fresh.aget_author() == author
        other = await Profile.objects.acreate()
        with pytest.raises(IntegrityError):
            await other.aset_author(author)
        assert other.author_id is None
        made = await other.acreate_author(name="Second")
        assert made.profile is other

    run(main)
    assert Profile.objects.get(pk=profile.pk).author_id == author.pk


def test_publisher_twins() -> None:
    book = factories.BookFactory()

    async def main() -> Publisher:
        made = await book.acreate_publisher(name="Async press")
        assert await book.aget_publisher() is made
        return made

    made = run(main)
    assert row_state(book)["publisher_id"] == made.pk
