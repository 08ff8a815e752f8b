"""Every ``set_<name>()`` is one transaction, and change tracking follows the row
through commits and rollbacks: after a rolled-back write ``has_<name>_changed()``
and ``get_previous_<name>_id()`` answer as before it; ``Model(pk=existing)``
has the row's key as its previous one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError, transaction

from tests import factories
from tests.helpers import memory_state, row_state
from tests.models import Author, Book

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    """What a failing post_save receiver (a history table, a search index) raises."""


@pytest.fixture
def book_and_authors() -> tuple[Book, Author, Author]:
    old, new = factories.AuthorFactory.create_batch(2)
    book = factories.BookFactory(author=old)
    return Book.objects.get(pk=book.pk), old, new


@pytest.mark.parametrize("how", ["set", "aset"])
def test_a_failing_post_save_receiver_rolls_the_set_back(
    fail_saves: Callable[..., None], book_and_authors: tuple[Book, Author, Author], how: str
) -> None:
    fail_saves(Book, after_write=True, error=Boom)  # from now on: the rows are made
    book, old, new = book_and_authors
    memory, row = memory_state(book), row_state(book)
    setter = book.set_author if how == "set" else async_to_sync(book.aset_author)
    with pytest.raises(Boom):
        setter(new)
    assert row_state(book) == row  # the UPDATE was rolled back
    assert memory_state(book) == memory  # and the instance put back
    assert (book.has_author_changed(), book.get_previous_author_id()) == (False, old.pk)


def test_a_failing_post_save_receiver_rolls_create_back(
    fail_saves: Callable[..., None], book_and_authors: tuple[Book, Author, Author]
) -> None:
    fail_saves(Book, after_write=True, error=Boom)  # from now on: the rows are made
    book, old, _new = book_and_authors
    authors, row = Author.objects.count(), row_state(book)
    with pytest.raises(Boom):
        book.create_author(name="Never")
    assert (Author.objects.count(), row_state(book)) == (authors, row)
    assert book.author_id == old.pk and not book.has_author_changed()


@pytest.mark.parametrize("write", ["set_author", "save"])
def test_tracking_after_the_callers_transaction_rolls_back(
    book_and_authors: tuple[Book, Author, Author], write: str
) -> None:
    book, old, new = book_and_authors
    inside = []

    def request() -> None:
        with transaction.atomic():
            if write == "set_author":
                book.set_author(new)
            else:
                book.author = new
                book.save()
            # Inside the transaction the row holds the new key.
            inside.append((book.has_author_changed(), book.get_previous_author_id()))
            raise Boom("a later step of the request failed")

    with pytest.raises(Boom):
        request()
    assert inside == [(False, new.pk)]
    assert row_state(book)["author_id"] == old.pk
    # The instance keeps the key it was given (as Django's own save() leaves it),
    # and knows the row does not hold it.
    assert book.author_id == new.pk
    assert (book.has_author_changed(), book.get_previous_author_id()) == (True, old.pk)
    # The retry writes it, and then the row holds it.
    book.save()
    assert row_state(book)["author_id"] == new.pk
    assert (book.has_author_changed(), book.get_previous_author_id()) == (False, new.pk)


def test_tracking_after_a_savepoint_rolls_back_inside_a_committed_transaction(
    book_and_authors: tuple[Book, Author, Author],
) -> None:
    book, old, new = book_and_authors
    with transaction.atomic():
        try:
            with transaction.atomic():
                book.set_author(new)
                raise Boom("retry later")
        except Boom:
            pass
        assert book.get_previous_author_id() == old.pk
    assert row_state(book)["author_id"] == old.pk
    assert (book.has_author_changed(), book.get_previous_author_id()) == (True, old.pk)


def test_tracking_after_the_callers_transaction_commits(
    book_and_authors: tuple[Book, Author, Author],
) -> None:
    book, _old, new = book_and_authors
    with transaction.atomic():
        book.set_author(new)
    assert row_state(book)["author_id"] == new.pk
    assert (book.has_author_changed(), book.get_previous_author_id()) == (False, new.pk)
    # Nothing of the write is kept once it committed.
    assert not [k for k in book._state.fields_cache if "not committed" in str(k)]


def test_a_database_error_at_commit_puts_the_instance_back(
    book_and_authors: tuple[Book, Author, Author],
) -> None:
    """A key with no row fails only when the deferred foreign key is checked, at
    the commit of set_author()'s own transaction (PostgreSQL; SQLite checks at
    the statement)."""
    book, old, _new = book_and_authors
    memory, row = memory_state(book), row_state(book)
    missing = Author.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000  # type: ignore[operator]
    with pytest.raises(DatabaseError):
        book.set_author(missing)
    assert row_state(book) == row
    assert memory_state(book) == memory
    assert (book.has_author_changed(), book.get_previous_author_id()) == (False, old.pk)


def test_a_constructed_instance_has_the_rows_key_as_its_previous(
    book_and_authors: tuple[Book, Author, Author], django_assert_num_queries: Any
) -> None:
    """``Book(pk=existing, ...)`` (an upsert from an API payload): the row's key
    is not known until read; save() updates the row, which then holds the key."""
    book, old, new = book_and_authors
    upsert = Book(
        pk=book.pk,
        title="Upserted",
        publisher_id=book.publisher_id,
        author=new,
        created=book.created,
    )
    assert upsert.has_author_changed()
    with django_assert_num_queries(1):
        assert upsert.get_previous_author_id() == old.pk
    with django_assert_num_queries(0):
        assert upsert.get_previous_author_id() == old.pk  # kept
    upsert.save()
    assert row_state(upsert)["author_id"] == new.pk
    assert (upsert.has_author_changed(), upsert.get_previous_author_id()) == (False, new.pk)
    fresh = Book(title="New", publisher_id=book.publisher_id, author=new)
    with django_assert_num_queries(0):
        assert (fresh.has_author_changed(), fresh.get_previous_author_id()) == (True, None)


def test_a_constructed_instance_of_a_missing_row(
    book_and_authors: tuple[Book, Author, Author],
) -> None:
    book, _old, new = book_and_authors
    ghost = Book(pk=book.pk + 1000, title="Ghost", publisher_id=book.publisher_id, author=new)
    assert ghost.get_previous_author_id() is None
    assert ghost.has_author_changed()


def test_tracking_after_a_rolled_back_set_of_a_null_key() -> None:
    """The row held NULL: after the rollback, the previous key is None again."""
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=None).pk)

    def request() -> None:
        with transaction.atomic():
            book.set_author(author)
            raise Boom("a later step failed")

    with pytest.raises(Boom):
        request()
    assert row_state(book)["author_id"] is None
    assert (book.has_author_changed(), book.get_previous_author_id()) == (True, None)


@pytest.mark.parametrize("write", ["set", "create", "create without save"])
def test_a_commit_callback_failing_after_the_commit_leaves_the_instance_on_the_new_state(
    book_and_authors: tuple[Book, Author, Author], write: str
) -> None:
    """The transaction committed, then a callback raised: the database kept the
    write, and so does the instance (nothing is put back)."""
    from django.db.models.signals import post_save

    book, old, new = book_and_authors

    def schedule(**kwargs: Any) -> None:
        def callback() -> None:
            raise Boom("after the commit")

        transaction.on_commit(callback)

    sender = Book if write != "create without save" else Author
    post_save.connect(schedule, sender=sender, weak=False, dispatch_uid="test_whole.schedule")
    try:
        write_it = (
            (lambda: book.set_author(new))
            if write == "set"
            else (lambda: book.create_author(name="Fresh", save=write == "create"))
        )
        with pytest.raises(Boom):
            write_it()
    finally:
        post_save.disconnect(sender=sender, dispatch_uid="test_whole.schedule")
    assert book.author_id not in (None, old.pk)
    if write != "create without save":
        assert row_state(book)["author_id"] == book.author_id
        assert (book.has_author_changed(), book.get_previous_author_id()) == (
            False,
            book.author_id,
        )
    assert Author.objects.filter(pk=book.author_id).exists()


def test_a_commit_that_fails_puts_the_instance_back(
    book_and_authors: tuple[Book, Author, Author],
) -> None:
    """The block ended, then the COMMIT failed (the deferred foreign key check of
    a key with no row, on both databases): nothing kept, the instance put back."""
    from django.db import IntegrityError

    book, old, _new = book_and_authors
    memory, row = memory_state(book), row_state(book)
    missing = Author.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    with pytest.raises(IntegrityError):
        book.set_author(missing)
    assert row_state(book) == row
    assert memory_state(book) == memory
    assert (book.has_author_changed(), book.get_previous_author_id()) == (False, old.pk)
