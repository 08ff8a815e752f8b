"""``is_<name>()``, ``has_<name>_changed()`` and ``get_previous_<name>_id()``: what the
key points at and what the row holds, as far as the instance knows, without a query."""

from __future__ import annotations

import copy
import pickle
import uuid
from typing import Any

import pytest
from django.db import IntegrityError, OperationalError, connection

from tests import factories
from tests.helpers import failing_statements, memory_state, row_state
from tests.models import Author, Book, City, Profile, ProxyAuthor, Shelf, Tag, Tagged, Volume

pytestmark = pytest.mark.django_db


def tracked(book: Book) -> tuple[bool, Any]:
    return book.has_author_changed(), book.get_previous_author_id()


# ------------------------------------------------------------------ is_<name>


def test_is_compares_instances_and_keys_without_a_query(
    linked_book: Book, author: Author, django_assert_num_queries: Any
) -> None:
    other = factories.AuthorFactory()
    proxy = ProxyAuthor.objects.get(pk=author.pk)
    with django_assert_num_queries(0):
        assert linked_book.is_author(author) is True
        assert linked_book.is_author(proxy) is True
        assert linked_book.is_author(other) is False
        assert linked_book.is_author(author.pk) is True
        assert linked_book.is_author(str(author.pk)) is True  # converted as set_author() does
        assert linked_book.is_author(other.pk) is False
        assert linked_book.is_author(None) is False


def test_is_none_and_a_null_key(book: Book, author: Author, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert book.is_author(None) is True
        assert book.is_author(author) is False
        assert book.is_author(author.pk) is False


def test_is_an_unsaved_target_is_false(linked_book: Book, author: Author) -> None:
    """Not even an unsaved Author given the same key: it is no row yet."""
    assert linked_book.is_author(Author(name="Unsaved")) is False
    assert linked_book.is_author(Author(pk=author.pk, name="Unsaved twin")) is False


def test_is_a_key_held_as_a_string(book: Book, author: Author) -> None:
    book.author_id = str(author.pk)
    assert book.is_author(author) is True
    assert book.is_author(author.pk) is True


def test_is_other_key_types(django_assert_num_queries: Any) -> None:
    tag = Tag.objects.create(label="t")
    tagged = Tagged.objects.get(pk=Tagged.objects.create(tag=tag).pk)
    country = factories.CountryFactory()
    city = City.objects.get(pk=City.objects.create(name="c", country=country).pk)
    with django_assert_num_queries(0):
        assert tagged.is_tag(tag) and tagged.is_tag(tag.pk) and tagged.is_tag(str(tag.pk))
        assert not tagged.is_tag(uuid.uuid4())
        assert city.is_country(country.code) and not city.is_country("ZZ")


@pytest.mark.parametrize(
    "make", [factories.PublisherFactory, factories.BookFactory], ids=["Publisher", "Book"]
)
def test_is_an_instance_of_another_model_raises_type_error(
    linked_book: Book, make: Any, django_assert_num_queries: Any
) -> None:
    value = make()
    with django_assert_num_queries(0), pytest.raises(TypeError) as info:
        linked_book.is_author(value)
    assert "Book.author" in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["abc", "", 1.5, True, b"1", [1], {"pk": 1}, object(), float("nan"), -(2**70)],
    ids=["word", "empty", "float", "bool", "bytes", "list", "dict", "object", "nan", "too-big"],
)
def test_is_a_bad_key_raises_what_set_raises(
    linked_book: Book, value: Any, django_assert_num_queries: Any
) -> None:
    memory = memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises((TypeError, ValueError)) as by_set:
        linked_book.set_author(value, save=False)
    with django_assert_num_queries(0), pytest.raises((TypeError, ValueError)) as by_is:
        linked_book.is_author(value)
    assert type(by_is.value) is type(by_set.value)
    assert str(by_is.value) == str(by_set.value)
    assert memory_state(linked_book) == memory


def test_is_one_to_one(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    profile = Profile.objects.get(pk=factories.ProfileFactory(author=author).pk)
    with django_assert_num_queries(0):
        assert profile.is_author(author) and profile.is_author(author.pk)
        assert not profile.is_author(None)


# ----------------------------------------------- has_<name>_changed, previous


def test_loaded_row_is_unchanged(linked_book: Book, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert tracked(linked_book) == (False, linked_book.author_id)


@pytest.mark.parametrize(
    "assign",
    [
        pytest.param(lambda book, new: setattr(book, "author", new), id="instance"),
        pytest.param(lambda book, new: setattr(book, "author_id", new.pk), id="key"),
        pytest.param(lambda book, new: book.set_author(new, save=False), id="set-no-save"),
        pytest.param(lambda book, new: book.set_author(new.pk, save=False), id="set-key-no-save"),
    ],
)
def test_an_assignment_counts_until_saved(
    linked_book: Book, assign: Any, django_assert_num_queries: Any
) -> None:
    old = linked_book.author_id
    new, newer = factories.AuthorFactory(), factories.AuthorFactory()
    with django_assert_num_queries(0):
        assign(linked_book, newer)
        assert tracked(linked_book) == (True, old)
        assign(linked_book, new)
        assert tracked(linked_book) == (True, old)  # still the row's key, not the last one
    with django_assert_num_queries(1):
        linked_book.set_author(new)
    assert row_state(linked_book)["author_id"] == new.pk
    with django_assert_num_queries(0):
        assert tracked(linked_book) == (False, new.pk)


@pytest.mark.parametrize(
    "back",
    [
        pytest.param(lambda book, old: setattr(book, "author_id", old.pk), id="key"),
        pytest.param(lambda book, old: setattr(book, "author_id", str(old.pk)), id="key-as-str"),
        pytest.param(lambda book, old: setattr(book, "author", old), id="instance"),
        pytest.param(lambda book, old: book.set_author(old, save=False), id="set"),
    ],
)
def test_assigning_the_old_key_back_undoes_the_change(
    linked_book: Book, author: Author, back: Any
) -> None:
    linked_book.author = factories.AuthorFactory()
    assert linked_book.has_author_changed()
    back(linked_book, author)
    assert tracked(linked_book) == (False, author.pk)


def test_to_null_and_back(linked_book: Book, author: Author) -> None:
    linked_book.author = None
    assert tracked(linked_book) == (True, author.pk)
    linked_book.save()
    assert row_state(linked_book)["author_id"] is None
    assert tracked(linked_book) == (False, None)
    linked_book.author_id = author.pk
    assert tracked(linked_book) == (True, None)


def test_plain_save_syncs(linked_book: Book) -> None:
    new = factories.AuthorFactory()
    linked_book.author = new
    linked_book.save()
    assert tracked(linked_book) == (False, new.pk)


def test_a_save_that_leaves_the_key_out_keeps_the_change(linked_book: Book, author: Author) -> None:
    """update_fields without the key: the row still holds the old one."""
    new = factories.AuthorFactory()
    linked_book.author = new
    linked_book.title = "Renamed"
    linked_book.save(update_fields=["title"])
    assert row_state(linked_book)["author_id"] == author.pk
    assert tracked(linked_book) == (True, author.pk)
    linked_book.save(update_fields=["author"])
    assert tracked(linked_book) == (False, new.pk)


def test_refresh_from_db_syncs(linked_book: Book, author: Author) -> None:
    linked_book.author = factories.AuthorFactory()
    linked_book.refresh_from_db()
    assert linked_book.author_id == author.pk
    assert tracked(linked_book) == (False, author.pk)


def test_refresh_from_db_reads_a_key_another_writer_moved(linked_book: Book) -> None:
    moved = factories.AuthorFactory()
    Book.objects.filter(pk=linked_book.pk).update(author=moved)
    assert tracked(linked_book) == (False, linked_book.author_id)  # it cannot know yet
    linked_book.author = factories.AuthorFactory()
    linked_book.refresh_from_db()
    assert tracked(linked_book) == (False, moved.pk)


def test_refresh_of_other_fields_keeps_the_change(linked_book: Book, author: Author) -> None:
    linked_book.author = factories.AuthorFactory()
    linked_book.refresh_from_db(fields=["title"])
    assert tracked(linked_book) == (True, author.pk)


def test_deferred_key_is_unchanged_and_not_loaded(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    book = Book.objects.only("title").get(pk=linked_book.pk)
    with django_assert_num_queries(0):
        assert book.has_author_changed() is False
    assert "author_id" in book.get_deferred_fields()
    # The previous key is the row's: reading it loads the deferred key.
    with django_assert_num_queries(1):
        assert book.get_previous_author_id() == linked_book.author_id
    with django_assert_num_queries(0):
        assert book.has_author_changed() is False


def test_deferred_key_assigned_is_changed_and_its_previous_read_from_the_row(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    """The row's key is not known after assigning a deferred one: changed, and the
    previous key is read from the row once (then known)."""
    other = factories.AuthorFactory()
    book = Book.objects.only("title").get(pk=linked_book.pk)
    with django_assert_num_queries(0):
        book.author_id = other.pk
        assert book.has_author_changed() is True
    with django_assert_num_queries(1):
        assert book.get_previous_author_id() == linked_book.author_id
    with django_assert_num_queries(0):
        assert tracked(book) == (True, linked_book.author_id)
    book.save()
    assert tracked(book) == (False, other.pk)


def test_deferred_key_assigned_survives_copy_and_pickle(linked_book: Book) -> None:
    book = Book.objects.only("title").get(pk=linked_book.pk)
    book.author_id = factories.AuthorFactory().pk
    for twin in (copy.copy(book), pickle.loads(pickle.dumps(book))):
        assert tracked(twin) == (True, linked_book.author_id)


def test_counters_move_when_a_deferred_key_is_assigned(django_assert_num_queries: Any) -> None:
    """The assigned key goes into the volume's one UPDATE, and the database's
    triggers count both shelves by the row's old and new key; a delete after
    such an assignment counts down the shelf the row holds, not the assigned one."""
    a, b = Shelf.objects.create(name="a"), Shelf.objects.create(name="b")
    volume = Volume.objects.create(title="v", shelf=a)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    deferred.shelf_id = b.pk
    assert deferred.has_shelf_changed()
    with django_assert_num_queries(2):  # the UPDATE; django-simple-history's INSERT
        deferred.save()
    assert [s.volumes_count for s in Shelf.objects.order_by("pk")] == [0, 1]
    assert not deferred.has_shelf_changed()
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    deferred.shelf_id = a.pk
    deferred.delete()  # the row held b
    assert [s.volumes_count for s in Shelf.objects.order_by("pk")] == [0, 0]


def test_never_saved_instance(publisher: Any, author: Author) -> None:
    empty = Book(title="Draft", publisher=publisher)
    assert tracked(empty) == (False, None)
    draft = Book(title="Draft", publisher=publisher, author=author)
    assert tracked(draft) == (True, None)
    draft.author = None
    assert tracked(draft) == (False, None)
    draft.author_id = author.pk
    draft.save()
    assert tracked(draft) == (False, author.pk)


def test_never_saved_instance_set_without_save(publisher: Any, author: Author) -> None:
    draft = Book(title="Draft", publisher=publisher)
    draft.set_author(author, save=False)
    assert tracked(draft) == (True, None)
    draft.set_author(author)  # inserts
    assert tracked(draft) == (False, author.pk)


def test_created_instance(author: Author, publisher: Any) -> None:
    book = Book.objects.create(title="Created", publisher=publisher, author=author)
    assert tracked(book) == (False, author.pk)


def test_failed_save_of_a_never_saved_instance(author: Author) -> None:
    draft = Book(title="No publisher", author=author)  # publisher is required
    with pytest.raises(IntegrityError):
        draft.save()
    assert draft._state.adding
    assert tracked(draft) == (True, None)


def test_create_counts_as_a_write(linked_book: Book) -> None:
    new = linked_book.create_author(name="Created")
    assert tracked(linked_book) == (False, new.pk)
    newer = linked_book.create_author(name="Not saved", save=False)
    assert tracked(linked_book) == (True, new.pk)
    assert linked_book.author_id == newer.pk


failing_update = failing_statements("UPDATE", "injected: the UPDATE failed")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pending", [False, True], ids=["clean", "already-changed"])
def test_failed_set_keeps_the_tracking_state(pending: bool) -> None:
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    if pending:
        book.author = factories.AuthorFactory()
    before, memory = tracked(book), memory_state(book)
    with connection.execute_wrapper(failing_update), pytest.raises(OperationalError):
        book.set_author(factories.AuthorFactory())
    assert row_state(book)["author_id"] == author.pk
    assert tracked(book) == before
    assert memory_state(book) == memory


@pytest.mark.django_db(transaction=True)
def test_failed_create_keeps_the_tracking_state() -> None:
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    with connection.execute_wrapper(failing_update), pytest.raises(OperationalError):
        book.create_author(name="Rolled back")
    assert tracked(book) == (False, author.pk)
    assert not Author.all_objects.filter(name="Rolled back").exists()


def test_copy_keeps_its_own_tracking(linked_book: Book, author: Author) -> None:
    new = factories.AuthorFactory()
    linked_book.author = new
    twin = copy.copy(linked_book)
    assert tracked(twin) == (True, author.pk)
    twin.author = author
    assert tracked(twin) == (False, author.pk)
    assert tracked(linked_book) == (True, author.pk)  # the original is not touched
    linked_book.save()
    assert tracked(linked_book) == (False, new.pk)
    assert tracked(twin) == (False, author.pk)  # the copy does not see the save


def test_copy_of_a_clean_instance(linked_book: Book, author: Author) -> None:
    twin = copy.copy(linked_book)
    linked_book.author = factories.AuthorFactory()
    assert tracked(twin) == (False, author.pk)


@pytest.mark.parametrize("pending", [False, True], ids=["clean", "changed"])
def test_pickling_keeps_the_tracking(linked_book: Book, author: Author, pending: bool) -> None:
    new = factories.AuthorFactory()
    if pending:
        linked_book.author = new
    back = pickle.loads(pickle.dumps(linked_book))
    assert tracked(back) == tracked(linked_book)
    back.author = new
    assert tracked(back) == (True, author.pk)
    back.save()
    assert tracked(back) == (False, new.pk)
    assert row_state(linked_book)["author_id"] == new.pk


def test_pickled_never_saved_instance(publisher: Any, author: Author) -> None:
    draft = Book(title="Draft", publisher=publisher, author=author)
    back = pickle.loads(pickle.dumps(draft))
    assert tracked(back) == (True, None)


def test_one_to_one_tracking(django_assert_num_queries: Any) -> None:
    old, new = factories.AuthorFactory(), factories.AuthorFactory()
    profile = Profile.objects.get(pk=factories.ProfileFactory(author=old).pk)
    with django_assert_num_queries(0):
        assert (profile.has_author_changed(), profile.get_previous_author_id()) == (False, old.pk)
        profile.author = new
        assert (profile.has_author_changed(), profile.get_previous_author_id()) == (True, old.pk)
    profile.save()
    assert (profile.has_author_changed(), profile.get_previous_author_id()) == (False, new.pk)


def test_each_field_tracks_its_own_key(linked_book: Book) -> None:
    old_publisher = linked_book.publisher_id
    linked_book.publisher = factories.PublisherFactory()
    assert linked_book.has_publisher_changed()
    assert linked_book.get_previous_publisher_id() == old_publisher
    assert tracked(linked_book) == (False, linked_book.author_id)


# ------------------------------------ a model that defines refresh_from_db() itself


def test_a_model_with_its_own_refresh_from_db_is_synced_by_the_refresh(author: Author) -> None:
    """Where this package does not wrap refresh_from_db() (the model defines it),
    the key attribute recognises Django's Model.refresh_from_db() on the stack. If
    Django stops assigning each field from refresh_from_db() itself, this fails:
    _compat.called_by_refresh_from_db() must then be rewritten."""
    from tests.models import OwnRefreshBook

    assert "refresh_from_db" in vars(OwnRefreshBook)  # ours is not installed
    moved = factories.AuthorFactory()
    book = OwnRefreshBook.objects.get(pk=OwnRefreshBook.objects.create(author=author).pk)
    book.author_id = factories.AuthorFactory().pk
    assert book.has_author_changed() is True
    OwnRefreshBook.objects.filter(pk=book.pk).update(author=moved)
    book.refresh_from_db()
    assert book.refreshes == 1
    assert book.author_id == moved.pk
    assert (book.has_author_changed(), book.get_previous_author_id()) == (False, moved.pk)
    book.author_id = author.pk  # an assignment after the refresh is a change again
    assert (book.has_author_changed(), book.get_previous_author_id()) == (True, moved.pk)


def test_assignment_keeps_the_row_key_apart_from_djangos_cache(linked_book: Book) -> None:
    """The first change is remembered beside the attribute, under a name no
    attribute can have, and travels with copies; Django's fields_cache stays empty."""
    import copy
    import pickle

    before = linked_book.author_id
    linked_book.author_id = factories.AuthorFactory().pk
    assert linked_book._state.fields_cache == {}
    for clone in (copy.copy(linked_book), pickle.loads(pickle.dumps(linked_book))):
        assert (clone.has_author_changed(), clone.get_previous_author_id()) == (True, before)
