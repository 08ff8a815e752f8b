"""Transaction behaviour PostgreSQL users rely on, checked on whichever database
the run uses (CI runs this file on SQLite and on PostgreSQL): deferred foreign key
checks, errors inside the caller's ``transaction.atomic()``, and ``create_<name>``
rolled back with the caller's transaction.

Django creates foreign keys ``DEFERRABLE INITIALLY DEFERRED`` on both backends, so
a key with no target row fails at COMMIT, not at the UPDATE. Every test commits
for real (``transaction=True``).
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from django.db.transaction import TransactionManagementError

from tests import factories
from tests.helpers import memory_state, row_state
from tests.models import Author, Book, Publisher

pytestmark = pytest.mark.django_db(transaction=True)

# A key no row has: far above anything a test creates.
MISSING = 10**12


@pytest.fixture
def linked() -> tuple[Book, Author]:
    """A committed book pointing at an author, read back fresh."""
    author = factories.AuthorFactory()
    book = factories.BookFactory(author=author)
    return Book.objects.get(pk=book.pk), author


@pytest.fixture
def taken() -> Author:
    """An author that already has a profile (Profile.author is unique)."""
    return factories.ProfileFactory(author=factories.AuthorFactory()).author


# ---------------------------------------------------------------- set


def test_set_to_a_missing_key_fails_at_the_callers_commit(linked: tuple[Book, Author]) -> None:
    book, author = linked
    row = row_state(book)
    with pytest.raises(IntegrityError), transaction.atomic():  # noqa: PT012 (the error comes from the COMMIT when the atomic block exits; the asserts check the state just before it)
        book.set_author(MISSING)  # no error yet: the check waits for COMMIT
        assert row_state(book)["author_id"] == MISSING
    assert row_state(book) == row
    book.refresh_from_db()
    assert book.get_author() == author


def test_set_to_a_key_whose_row_comes_later_in_the_transaction(linked: tuple[Book, Author]) -> None:
    book, _ = linked
    with transaction.atomic():
        book.set_author(MISSING)
        later = Author.objects.create(pk=MISSING, name="Later")
    assert row_state(book)["author_id"] == MISSING
    assert Book.objects.get(pk=book.pk).get_author() == later


def test_set_failure_in_a_savepoint_leaves_the_callers_transaction_usable(taken: Author) -> None:
    profile = factories.ProfileFactory()
    free = factories.AuthorFactory()
    with transaction.atomic():
        memory = memory_state(profile)
        with pytest.raises(IntegrityError), transaction.atomic():
            profile.set_author(taken)  # unique: fails at once, not at COMMIT
        assert memory_state(profile) == memory
        profile.set_author(free)  # on PostgreSQL only because the savepoint was rolled back
    assert row_state(profile)["author_id"] == free.pk


def test_set_failure_without_a_savepoint_spoils_the_callers_transaction(taken: Author) -> None:
    profile = factories.ProfileFactory()
    row, memory = row_state(profile), memory_state(profile)
    with transaction.atomic():
        Publisher.objects.create(name="Rolled back")
        with pytest.raises(IntegrityError):
            profile.set_author(taken)
        assert memory_state(profile) == memory
        with pytest.raises(TransactionManagementError):
            Publisher.objects.count()
    assert not Publisher.objects.filter(name="Rolled back").exists()
    assert row_state(profile) == row


# ------------------------------------------------------------- create


def test_create_rolls_back_with_the_callers_transaction(linked: tuple[Book, Author]) -> None:
    book, _ = linked
    row = row_state(book)
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (the caller's raise rolls the block back; the assert checks the state just before it)
        created = book.create_author(name="Gone")
        assert row_state(book)["author_id"] == created.pk
        raise RuntimeError("caller gives up")
    assert not Author.all_objects.filter(name="Gone").exists()
    assert row_state(book) == row


def test_create_whose_owner_breaks_a_deferred_check_fails_at_the_callers_commit() -> None:
    book = Book(title="Dangling publisher", publisher_id=MISSING)
    with pytest.raises(IntegrityError), transaction.atomic():  # noqa: PT012 (the error comes from the COMMIT when the atomic block exits; the asserts check the state just before it)
        book.create_author(name="Gone")  # create's own savepoint is released
        assert book.pk is not None
    assert not Author.all_objects.filter(name="Gone").exists()
    assert not Book.objects.filter(title="Dangling publisher").exists()


def test_create_whose_owner_insert_fails_rolls_back_to_its_savepoint() -> None:
    book = Book(title="No publisher")  # publisher_id NULL: NOT NULL fails at once
    memory = memory_state(book)
    with transaction.atomic():
        Publisher.objects.create(name="Kept")
        with pytest.raises(IntegrityError):
            book.create_author(name="Gone")
        assert memory_state(book) == memory
        # The caller's transaction goes on: create's atomic block was a savepoint.
        assert not Author.all_objects.filter(name="Gone").exists()
    assert Publisher.objects.filter(name="Kept").exists()
    assert not Book.objects.filter(title="No publisher").exists()


def test_acreate_inside_the_callers_transaction_is_rolled_back_with_it(
    linked: tuple[Book, Author],
) -> None:
    book, _ = linked
    row = row_state(book)

    def unit() -> None:
        with transaction.atomic():
            async_to_sync(book.acreate_author)(name="Gone")
            raise RuntimeError("caller gives up")

    with pytest.raises(RuntimeError):
        unit()
    assert not Author.all_objects.filter(name="Gone").exists()
    assert row_state(book) == row
