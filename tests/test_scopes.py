"""The ``scope=`` argument of ``get_<name>()``: what each kind of scope selects,
and every kind of scope that is refused (issue 2, **scope**)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models
from django.test.utils import isolate_apps

from belongsto_ext import BelongsToField, InvalidScope
from tests import factories
from tests.helpers import book_by, fresh, memory_state, row_state
from tests.models import Author, Book, ProxyAuthor, Publisher

pytestmark = pytest.mark.django_db

AUTHOR_MANAGERS = ("objects", "all_objects", "active_authors", "verified_authors")


# ------------------------------------------------------------ default scope


@pytest.mark.parametrize("scope", [None, True])
def test_default_scope_returns_a_visible_author(scope: Any, django_assert_num_queries: Any) -> None:
    book, author = book_by()
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) == author


@pytest.mark.parametrize("scope", [None, True])
def test_default_scope_hides_a_soft_deleted_author(
    scope: Any, django_assert_num_queries: Any
) -> None:
    book, author = book_by(deleted=True)
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) is None
    # Unlike get_author(), plain ``book.author`` reads through the base manager.
    assert fresh(book).author == author


def test_omitted_scope_is_the_default_scope(django_assert_num_queries: Any) -> None:
    live_book, live = book_by()
    deleted_book, _ = book_by(deleted=True)
    with django_assert_num_queries(2):
        assert live_book.get_author() == live
        assert deleted_book.get_author() is None


def test_false_is_the_base_manager(django_assert_num_queries: Any) -> None:
    book, author = book_by(deleted=True, active=False)
    with django_assert_num_queries(1):
        found = book.get_author(scope=False)
    assert found == author
    assert found.deleted is True


def test_default_scope_of_an_unfiltered_default_manager(
    publisher: Any, django_assert_num_queries: Any
) -> None:
    book = fresh(factories.BookFactory(publisher=publisher))
    with django_assert_num_queries(1):
        assert book.get_publisher() == publisher


# ------------------------------------------------------------- named scopes


def test_named_scope_replaces_the_default_scope(django_assert_num_queries: Any) -> None:
    """``all_objects`` is a declared manager that does not filter: the soft-deleted
    author the default scope hides is found through it."""
    book, author = book_by(deleted=True)
    with django_assert_num_queries(2):
        assert book.get_author(scope="all_objects") == author
        # "active_authors" does not filter deleted rows either: it replaces
        # the default scope, it is not added to it.
        assert book.get_author(scope="active_authors") == author


@pytest.mark.parametrize(
    ("scope", "fields", "found"),
    [
        ("objects", {}, True),
        ("objects", {"deleted": True}, False),
        ("active_authors", {"active": True}, True),
        ("active_authors", {"active": False}, False),
        ("verified_authors", {"verified": True}, True),
        ("verified_authors", {"verified": False}, False),
    ],
)
def test_named_scope_selects_what_its_manager_selects(
    scope: str, fields: dict[str, Any], found: bool, django_assert_num_queries: Any
) -> None:
    book, author = book_by(**fields)
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) == (author if found else None)


@pytest.mark.parametrize("kind", [list, tuple])
@pytest.mark.parametrize(
    ("active", "verified", "found"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_list_of_names_selects_rows_every_scope_selects(
    kind: type, active: bool, verified: bool, found: bool, django_assert_num_queries: Any
) -> None:
    book, author = book_by(active=active, verified=verified)
    with django_assert_num_queries(1):
        result = book.get_author(scope=kind(["active_authors", "verified_authors"]))
    assert result == (author if found else None)


def test_list_of_names_including_the_default_scope(django_assert_num_queries: Any) -> None:
    book, author = book_by(active=True, deleted=True)
    with django_assert_num_queries(2):
        assert book.get_author(scope=["active_authors", "objects"]) is None
        assert book.get_author(scope=["active_authors", "all_objects"]) == author


def test_single_name_list_equals_the_name(django_assert_num_queries: Any) -> None:
    book, _ = book_by(active=False)
    other, other_author = book_by(active=True)
    with django_assert_num_queries(2):
        assert book.get_author(scope=["active_authors"]) is None
        assert other.get_author(scope=("active_authors",)) == other_author


# ---------------------------------------------------------- QuerySet scopes


def test_queryset_scope_is_used_as_given(django_assert_num_queries: Any) -> None:
    book, author = book_by(name="Ursula", deleted=True)
    with django_assert_num_queries(3):
        assert book.get_author(scope=Author.all_objects.filter(name="Ursula")) == author
        assert book.get_author(scope=Author.all_objects.filter(name="Other")) is None
        # A QuerySet of the default manager keeps its filter.
        assert book.get_author(scope=Author.objects.filter(name="Ursula")) is None


def test_queryset_scope_keeps_its_own_filters_on_top_of_a_named_manager(
    django_assert_num_queries: Any,
) -> None:
    book, author = book_by(active=True, verified=False)
    with django_assert_num_queries(2):
        assert book.get_author(scope=Author.active_authors.filter(verified=False)) == author
        assert book.get_author(scope=Author.active_authors.filter(verified=True)) is None


def test_proxy_queryset_of_the_same_concrete_model_is_accepted(
    django_assert_num_queries: Any,
) -> None:
    book, author = book_by(name="Proxied")
    with django_assert_num_queries(2):
        found = book.get_author(scope=ProxyAuthor.objects.filter(name="Proxied"))
        assert book.get_author(scope=ProxyAuthor.objects.filter(name="Nobody")) is None
    assert isinstance(found, ProxyAuthor)
    assert found.pk == author.pk


def refused_querysets() -> list[Any]:
    return [
        pytest.param(lambda: Publisher.objects.all(), "Publisher", id="other-model"),
        pytest.param(lambda: Book.objects.all(), "Book", id="owner-model"),
        pytest.param(lambda: Author.objects.all()[:5], "sliced", id="sliced"),
        pytest.param(lambda: Author.objects.all()[1:], "sliced", id="sliced-offset"),
        pytest.param(lambda: Author.objects.values(), "values", id="values"),
        pytest.param(
            lambda: Author.objects.values_list("pk", flat=True), "values", id="values-list"
        ),
    ]


@pytest.mark.parametrize(("make", "reason"), refused_querysets())
def test_queryset_scope_refused(make: Any, reason: str) -> None:
    book, author = book_by()
    queryset = make()
    before = memory_state(book), row_state(book), row_state(author)
    with pytest.raises(InvalidScope) as excinfo:
        book.get_author(scope=queryset)
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert "Author" in message
    assert reason in message
    assert (memory_state(book), row_state(book), row_state(author)) == before


@pytest.mark.parametrize(("make", "reason"), refused_querysets())
def test_queryset_scope_refused_without_a_query(
    make: Any, reason: str, django_assert_num_queries: Any
) -> None:
    book, _ = book_by()
    queryset = make()
    with django_assert_num_queries(0), pytest.raises(InvalidScope):
        book.get_author(scope=queryset)


# ----------------------------------------------------------- invalid scopes


def invalid_scopes() -> list[Any]:
    return [
        pytest.param(lambda: "delete", id="delete"),
        pytest.param(lambda: "_base_manager", id="_base_manager"),
        pytest.param(lambda: "_default_manager", id="_default_manager"),
        pytest.param(lambda: "", id="empty-string"),
        pytest.param(lambda: "objects.delete", id="objects.delete"),
        pytest.param(lambda: "__class__", id="__class__"),
        pytest.param(lambda: "DoesNotExist", id="DoesNotExist"),
        pytest.param(lambda: "_meta", id="_meta"),
        pytest.param(lambda: "save", id="save"),
        pytest.param(lambda: "books", id="reverse-accessor"),
        pytest.param(lambda: "Objects", id="wrong-case"),
        pytest.param(lambda: " objects", id="padded"),
        pytest.param(lambda: 7, id="int"),
        pytest.param(lambda: 1, id="one"),
        pytest.param(lambda: 0, id="zero"),
        pytest.param(lambda: 1.0, id="float"),
        pytest.param(lambda: b"objects", id="bytes"),
        pytest.param(list, id="empty-list"),
        pytest.param(lambda: (), id="empty-tuple"),
        pytest.param(lambda: ["active_authors", 3], id="list-with-int"),
        pytest.param(lambda: ["active_authors", None], id="list-with-none"),
        pytest.param(lambda: [["objects"]], id="nested-list"),
        pytest.param(lambda: ["active_authors", "delete"], id="list-with-delete"),
        pytest.param(lambda: {"objects"}, id="set"),
        pytest.param(lambda: {"scope": "objects"}, id="dict"),
        pytest.param(lambda: Author.objects, id="manager-object"),
        pytest.param(lambda: Author.active_authors, id="named-manager-object"),
        pytest.param(lambda: Author, id="model-class"),
        pytest.param(lambda: object(), id="object"),
    ]


def assert_names_everything(message: str, model: type[models.Model], scope: Any) -> None:
    assert model.__name__ in message
    assert repr(scope) in message
    for name in model._meta.managers_map:
        assert name in message


@pytest.mark.parametrize("make", invalid_scopes())
def test_invalid_scope_refused_and_nothing_touched(
    make: Any, django_assert_num_queries: Any
) -> None:
    book, author = book_by()
    other = factories.AuthorFactory()
    scope = make()
    before = memory_state(book), row_state(book), row_state(author), row_state(other)
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        book.get_author(scope=scope)
    assert isinstance(excinfo.value, ValueError)
    assert_names_everything(str(excinfo.value), Author, scope)
    # Nothing was deleted, saved or changed, in memory or in the database.
    assert (memory_state(book), row_state(book), row_state(author), row_state(other)) == before
    assert Author.all_objects.count() == 2
    assert Book.objects.count() == 1


@pytest.mark.parametrize("make", invalid_scopes())
def test_invalid_scope_refused_on_a_null_key(
    make: Any, book: Any, django_assert_num_queries: Any
) -> None:
    scope = make()
    before = memory_state(book), row_state(book)
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        book.get_author(scope=scope)
    assert_names_everything(str(excinfo.value), Author, scope)
    assert (memory_state(book), row_state(book)) == before


def test_invalid_scope_names_the_targets_own_managers(
    book: Any, django_assert_num_queries: Any
) -> None:
    """Publisher declares only ``objects``: Author's manager names are refused there."""
    before = memory_state(book), row_state(book)
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        book.get_publisher(scope="active_authors")
    assert_names_everything(str(excinfo.value), Publisher, "active_authors")
    assert "all_objects" not in str(excinfo.value)
    assert (memory_state(book), row_state(book)) == before


def test_invalid_scope_is_a_value_error(book: Any) -> None:
    with pytest.raises(ValueError, match="delete"):
        book.get_author(scope="delete")


def test_scope_delete_deletes_nothing() -> None:
    book, author = book_by()
    with pytest.raises(InvalidScope):
        book.get_author(scope="delete")
    with pytest.raises(InvalidScope):
        book.get_author(scope="objects.delete")
    assert Author.all_objects.filter(pk=author.pk).exists()
    assert Book.objects.filter(pk=book.pk, author=author).exists()


@isolate_apps("tests")
def test_scope_string_reaches_nothing_but_a_declared_manager() -> None:
    """A scope string never reads any other attribute of the model or its
    managers; the models have no table and this test has no database access,
    so any query would fail too."""
    touched: list[str] = []

    class Spy:
        """A class attribute that records every read."""

        def __set_name__(self, owner: type, name: str) -> None:
            self.name = name

        def __get__(self, instance: object, owner: type | None = None) -> Any:
            touched.append(self.name)
            return lambda *args, **kwargs: touched.append(f"{self.name}()")

    class TrapManager(models.Manager):
        purge = Spy()

    class Trap(models.Model):
        objects = TrapManager()
        purge = Spy()
        secret = Spy()

    class Owner(models.Model):
        trap = BelongsToField(Trap, on_delete=models.CASCADE, null=True)

    owner = Owner(trap_id=1)
    touched.clear()
    for scope in ["purge", "secret", "objects.purge", ["objects", "purge"], ("secret",)]:
        with pytest.raises(InvalidScope) as excinfo:
            owner.get_trap(scope=scope)
        assert_names_everything(str(excinfo.value), Trap, scope)
    assert touched == []
