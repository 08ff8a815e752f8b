"""The fields as drop-in ForeignKey / OneToOneField: exports, options, and the
methods they install (names, signatures, alters_data, a user's attribute wins)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.db import IntegrityError, connection, models
from django.db.models.query_utils import DeferredAttribute
from django.test.utils import isolate_apps

import belongsto_ext
from belongsto_ext import BelongsToField, BelongsToOneField
from tests import factories
from tests.helpers import memory_state, row_state
from tests.models import Author, Book, Employee, LooseBook, Profile, SlugBook

P = inspect.Parameter
WRITERS = ("set_%s", "create_%s", "aset_%s", "acreate_%s")
READERS = ("get_%s", "aget_%s")
ALL = READERS + WRITERS


# ------------------------------------------------------------------ exports


def test_package_exports_the_public_api() -> None:
    assert {"BelongsToField", "BelongsToOneField", "InvalidScope", "aprefetch", "prefetch"} <= set(
        belongsto_ext.__all__
    )
    assert len(set(belongsto_ext.__all__)) == len(belongsto_ext.__all__)
    namespace: dict[str, Any] = {}
    exec("from belongsto_ext import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(belongsto_ext.__all__)
    for name in belongsto_ext.__all__:
        assert not name.startswith("_")
        assert not inspect.ismodule(namespace[name])


def test_fields_subclass_djangos_fields() -> None:
    assert issubclass(BelongsToField, models.ForeignKey)
    assert issubclass(BelongsToOneField, models.OneToOneField)
    assert not issubclass(BelongsToField, models.OneToOneField)
    assert isinstance(Book._meta.get_field("author"), models.ForeignKey)
    assert isinstance(Profile._meta.get_field("author"), models.OneToOneField)
    assert issubclass(belongsto_ext.InvalidScope, ValueError)


def test_field_is_a_regular_foreign_key_to_django() -> None:
    field = Book._meta.get_field("author")
    assert field.many_to_one and not field.one_to_one
    assert field.related_model is Author
    assert field.attname == "author_id"
    assert field.remote_field.related_name == "books"
    one = Profile._meta.get_field("author")
    assert one.one_to_one and one.unique


# ------------------------------------------------------- method signatures


@pytest.mark.parametrize(
    ("model", "name"), [(Book, "author"), (Book, "publisher"), (Profile, "author")]
)
def test_six_methods_are_installed(model: type[models.Model], name: str) -> None:
    for template in ALL:
        method = getattr(model, template % name)
        assert callable(method)
        assert method.__name__ == template % name


def _params(func: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize("prefix", ["", "a"])
def test_get_signature(prefix: str) -> None:
    params = _params(getattr(Book, f"{prefix}get_author"))
    assert params[0][0] == "self"
    assert ("scope", P.KEYWORD_ONLY, None) in params
    assert all(kind is P.KEYWORD_ONLY for _, kind, _ in params[1:])
    with pytest.raises(TypeError):
        Book().get_author(None)  # scope is keyword-only


@pytest.mark.parametrize("prefix", ["", "a"])
def test_set_signature(prefix: str) -> None:
    assert _params(getattr(Book, f"{prefix}set_author")) == [
        ("self", P.POSITIONAL_OR_KEYWORD, P.empty),
        ("value", P.POSITIONAL_OR_KEYWORD, P.empty),
        ("save", P.KEYWORD_ONLY, True),
        ("validate", P.KEYWORD_ONLY, False),
        ("save_kwargs", P.VAR_KEYWORD, P.empty),
    ]


@pytest.mark.parametrize("prefix", ["", "a"])
def test_create_signature(prefix: str) -> None:
    assert _params(getattr(Book, f"{prefix}create_author")) == [
        ("self", P.POSITIONAL_ONLY, P.empty),
        ("values", P.POSITIONAL_ONLY, None),
        ("save", P.KEYWORD_ONLY, True),
        ("fields", P.VAR_KEYWORD, P.empty),
    ]


@pytest.mark.django_db
def test_create_values_is_positional_only_so_a_field_may_be_called_values(book: Book) -> None:
    with pytest.raises(TypeError, match="values"):
        book.create_author(values={"name": "x"})  # 'values' becomes a field name: Author has none
    assert Author.all_objects.count() == 0


@pytest.mark.parametrize(("model", "name"), [(Book, "author"), (Profile, "author")])
def test_writers_alter_data_and_readers_do_not(model: type[models.Model], name: str) -> None:
    for template in WRITERS:
        assert getattr(model, template % name).alters_data is True
        assert getattr(model(), template % name).alters_data is True
    for template in READERS:
        assert getattr(getattr(model, template % name), "alters_data", False) is False


def test_async_twins_are_coroutine_functions() -> None:
    for template in ("aget_%s", "aset_%s", "acreate_%s"):
        assert inspect.iscoroutinefunction(getattr(Book, template % "author"))
        assert inspect.iscoroutinefunction(getattr(Book(), template % "author"))
    for template in ("get_%s", "set_%s", "create_%s"):
        assert not inspect.iscoroutinefunction(getattr(Book, template % "author"))


def test_methods_are_documented() -> None:
    assert Book.get_author.__doc__ and Book.create_publisher.__doc__
    assert Book.get_author.__qualname__ == "Book.get_author"


# ------------------------------------------------------------ user wins


def test_user_method_on_abstract_base_wins() -> None:
    from tests.models import Magazine, Pamphlet

    assert Magazine().get_author() == "user-defined get_author"
    assert Pamphlet().get_author() == "user-defined get_author"
    assert Pamphlet().set_publisher(object()) == "user-defined set_publisher"
    # The other methods of the same fields are still installed.
    assert Magazine.set_author.alters_data is True
    assert Pamphlet.get_publisher.__qualname__ == "Pamphlet.get_publisher"


@isolate_apps("tests")
def test_field_property_and_class_attribute_of_the_same_name_are_kept() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        get_writer = models.CharField(max_length=10)  # a field declared before
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)
        aget_writer = models.IntegerField(default=0)  # ... and after
        create_writer = "not a method"

        class Meta:
            app_label = "tests"

        @property
        def set_writer(self) -> str:
            return "property"

        def aset_writer(self) -> str:
            return "mine"

    essay = Essay(get_writer="text", aget_writer=3)
    assert isinstance(Essay.__dict__["get_writer"], DeferredAttribute)
    assert isinstance(Essay.__dict__["aget_writer"], DeferredAttribute)
    assert essay.get_writer == "text"
    assert essay.aget_writer == 3
    assert Essay.create_writer == "not a method"
    assert essay.set_writer == "property"
    assert essay.aset_writer() == "mine"
    assert Essay.acreate_writer.alters_data is True  # the one free name is installed
    assert [f.name for f in Essay._meta.fields] == ["id", "get_writer", "writer", "aget_writer"]


@isolate_apps("tests")
def test_attribute_set_to_none_is_kept() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)
        create_writer = None  # the user opts out of this method

        class Meta:
            app_label = "tests"

    assert Essay.create_writer is None


@isolate_apps("tests")
def test_user_method_on_concrete_base_wins_in_subclass_field() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Base(models.Model):
        class Meta:
            app_label = "tests"

        def get_writer(self) -> str:
            return "base's"

    class Child(Base):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    assert Child().get_writer() == "base's"
    assert Child.set_writer.alters_data is True


@pytest.mark.django_db
def test_second_field_on_same_model_gets_its_own_methods(book: Book, author: Author) -> None:
    other = factories.PublisherFactory()
    old_publisher = book.publisher
    book.set_publisher(other)
    book.set_author(author)
    book.refresh_from_db()
    assert (book.author_id, book.publisher_id) == (author.pk, other.pk)
    assert book.get_publisher() == other != old_publisher
    assert book.get_author() == author


# ------------------------------------------------------------ options


@pytest.mark.django_db
def test_to_field_and_db_column(author: Author) -> None:
    field = SlugBook._meta.get_field("author")
    assert field.to_fields == ["slug"]
    assert field.column == "author_slug"
    slug_book = factories.SlugBookFactory()
    slug_book.set_author(author)
    assert slug_book.author_id == author.slug
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name('author_slug')} FROM {SlugBook._meta.db_table} WHERE id = %s",
            [slug_book.pk],
        )
        assert cursor.fetchone() == (author.slug,)
    fresh = SlugBook.objects.get(pk=slug_book.pk)
    assert fresh.get_author() == author
    fresh.set_author(None)
    assert row_state(fresh)["author_id"] is None
    fresh.set_author(author.slug)  # a to_field value, not the pk
    assert SlugBook.objects.get(pk=slug_book.pk).get_author() == author
    made = fresh.create_author(name="New", slug="new-one")
    assert row_state(fresh)["author_id"] == "new-one" == made.slug


@pytest.mark.django_db(transaction=True)  # SQLite and PostgreSQL check the key at commit
def test_to_field_key_without_target_row_is_rolled_back() -> None:
    slug_book = factories.SlugBookFactory()
    before = (row_state(slug_book), memory_state(slug_book))
    with pytest.raises(IntegrityError):
        slug_book.set_author("no-such-slug")
    assert (row_state(slug_book), memory_state(slug_book)) == before


def test_lazy_string_is_resolved() -> None:
    field = SlugBook._meta.get_field("author")
    assert field.related_model is Author
    assert field.remote_field.model is Author


@isolate_apps("tests")
def test_lazy_string_to_a_model_defined_later() -> None:
    class Chapter(models.Model):
        novel = BelongsToField("LaterNovel", on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    # The methods exist before the target does.
    assert Chapter.set_novel.alters_data is True
    assert Chapter._meta.get_field("novel").remote_field.model == "LaterNovel"

    class LaterNovel(models.Model):
        class Meta:
            app_label = "tests"

    assert Chapter._meta.get_field("novel").related_model is LaterNovel
    target = LaterNovel.from_db("default", ["id"], [7])
    chapter = Chapter()
    chapter.set_novel(target, save=False)
    assert chapter.novel_id == 7
    assert chapter.get_novel() is target
    with pytest.raises(TypeError, match="LaterNovel"):
        chapter.set_novel(Chapter.from_db("default", ["id", "novel_id"], [1, None]), save=False)


@pytest.mark.django_db
def test_self_relation() -> None:
    boss = factories.EmployeeFactory(name="Boss")
    worker = factories.EmployeeFactory()
    assert Employee._meta.get_field("manager").related_model is Employee
    worker.set_manager(boss)
    assert list(boss.reports.all()) == [worker]
    fresh = Employee.objects.get(pk=worker.pk)
    assert fresh.get_manager() == boss
    assert boss.get_manager() is None
    deputy = worker.create_manager(name="Deputy")
    assert isinstance(deputy, Employee)
    assert Employee.objects.get(pk=worker.pk).manager_id == deputy.pk
    boss.set_manager(boss)  # pointing at itself is allowed, as for a ForeignKey
    assert Employee.objects.get(pk=boss.pk).get_manager() == boss


@pytest.mark.django_db
def test_db_constraint_false_allows_a_dangling_key(django_assert_num_queries: Any) -> None:
    constraints = connection.introspection.get_constraints(
        connection.cursor(), LooseBook._meta.db_table
    )
    assert not any(c["foreign_key"] for c in constraints.values())
    loose = factories.LooseBookFactory()
    loose.set_author(999_999)
    assert row_state(loose)["author_id"] == 999_999
    with django_assert_num_queries(1):
        assert loose.get_author() is None


@pytest.mark.django_db
def test_related_name(book: Book, author: Author) -> None:
    book.set_author(author)
    assert list(author.books.all()) == [book]
    assert list(book.publisher.books.all()) == [book]
    assert not hasattr(Author, "loosebook_set")  # related_name="+" still hides the reverse accessor


@pytest.mark.django_db(transaction=True)
def test_one_to_one(author: Author, django_assert_num_queries: Any) -> None:
    profile = factories.ProfileFactory()
    profile.set_author(author)
    with django_assert_num_queries(0):
        assert profile.get_author(scope=False) is author
        assert author.profile is profile
    fresh = Profile.objects.get(pk=profile.pk)
    assert fresh.get_author() == author
    other = factories.ProfileFactory()
    before = (row_state(other), memory_state(other))
    with pytest.raises(IntegrityError):
        other.set_author(author)  # unique: one profile per author
    assert (row_state(other), memory_state(other)) == before
    made = other.create_author(name="Second")
    assert Profile.objects.get(pk=other.pk).author_id == made.pk
    assert made.profile is other


@pytest.mark.django_db
def test_on_delete_is_djangos(book: Book, author: Author) -> None:
    book.set_author(author)
    slug_book = factories.SlugBookFactory(author=author)
    with pytest.raises(models.ProtectedError):
        book.publisher.delete()
    Author.all_objects.filter(pk=author.pk).delete()
    assert not Book.objects.filter(pk=book.pk).exists()  # CASCADE
    assert SlugBook.objects.get(pk=slug_book.pk).author_id is None  # SET_NULL
