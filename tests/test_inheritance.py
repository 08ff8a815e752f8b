"""Abstract bases, multi-table inheritance and proxies: each model gets working
methods bound to the field it really has, and writes go to the right table."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from belongsto_ext import BelongsToField
from tests import factories
from tests.helpers import memory_state, row_state
from tests.models import (
    Author,
    Book,
    Magazine,
    Novel,
    Pamphlet,
    ProxyAuthor,
    ProxyBook,
    ProxyTargetBook,
    Publisher,
)


def _tables(captured: CaptureQueriesContext) -> list[str]:
    """The SQL of each captured query, lower-cased."""
    return [q["sql"].lower() for q in captured.captured_queries]


# ------------------------------------------------------------ abstract base


def test_each_child_of_an_abstract_base_has_its_own_field() -> None:
    assert Magazine._meta.get_field("publisher").model is Magazine
    assert Pamphlet._meta.get_field("publisher").model is Pamphlet
    assert Magazine.get_publisher.__qualname__ == "Magazine.get_publisher"
    assert Pamphlet.get_publisher.__qualname__ == "Pamphlet.get_publisher"
    assert Magazine.set_publisher is not Pamphlet.get_publisher


@pytest.mark.django_db
def test_abstract_children_work_on_their_own_tables(publisher: Publisher, author: Author) -> None:
    magazine = Magazine.objects.create(title="M")
    pamphlet = Pamphlet.objects.create(title="P")
    with CaptureQueriesContext(connection) as captured:
        magazine.set_publisher(publisher)
    assert len(captured) == 1
    assert Magazine._meta.db_table in _tables(captured)[0]
    assert Pamphlet._meta.db_table not in _tables(captured)[0]
    assert row_state(magazine)["publisher_id"] == publisher.pk
    assert row_state(pamphlet)["publisher_id"] is None

    pamphlet.set_author(author)  # Pamphlet only overrides set_publisher
    assert row_state(pamphlet)["author_id"] == author.pk
    assert row_state(magazine)["author_id"] is None

    fresh_magazine = Magazine.objects.get(pk=magazine.pk)
    fresh_pamphlet = Pamphlet.objects.get(pk=pamphlet.pk)
    assert fresh_magazine.get_publisher() == publisher
    assert fresh_pamphlet.get_publisher() is None
    assert fresh_magazine.get_author() == "user-defined get_author"
    assert fresh_pamphlet.aget_author.__qualname__ == "Pamphlet.aget_author"

    made = fresh_pamphlet.create_publisher(name="Pamphlet press")
    assert row_state(fresh_pamphlet)["publisher_id"] == made.pk
    assert row_state(magazine)["publisher_id"] == publisher.pk


@pytest.mark.django_db
def test_error_messages_name_the_concrete_child() -> None:
    magazine = Magazine.objects.create(title="M")
    before = (row_state(magazine), memory_state(magazine))
    with pytest.raises((TypeError, ValueError), match=r"Magazine\.publisher.*'abc'"):
        magazine.set_publisher("abc")
    assert (row_state(magazine), memory_state(magazine)) == before


@isolate_apps("tests")
def test_class_placeholders_in_related_name_per_child() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Written(models.Model):
        writer = BelongsToField(
            Writer, on_delete=models.CASCADE, null=True, related_name="%(class)s_items"
        )

        class Meta:
            abstract = True
            app_label = "tests"

    class Essay(Written):
        class Meta:
            app_label = "tests"

    class Poem(Written):
        class Meta:
            app_label = "tests"

    assert hasattr(Writer, "essay_items") and hasattr(Writer, "poem_items")
    writer = Writer.from_db("default", ["id"], [3])
    essay, poem = Essay(), Poem()
    essay.set_writer(writer, save=False)
    assert (essay.writer_id, poem.writer_id) == (3, None)
    assert essay.get_writer() is writer
    assert poem.get_writer() is None


@isolate_apps("tests")
def test_grandchild_of_two_abstract_levels() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Base(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True, related_name="+")

        class Meta:
            abstract = True
            app_label = "tests"

    class Middle(Base):
        class Meta:
            abstract = True
            app_label = "tests"

        def get_writer(self) -> str:
            return "middle's"

    class Leaf(Middle):
        class Meta:
            app_label = "tests"

    leaf = Leaf()
    assert leaf.get_writer() == "middle's"
    leaf.set_writer(Writer.from_db("default", ["id"], [5]), save=False)
    assert leaf.writer_id == 5
    assert Leaf.set_writer.__qualname__ == f"{Leaf.__qualname__}.set_writer"


# ---------------------------------------------------- multi-table inheritance


def test_mti_child_uses_the_parents_field() -> None:
    assert Novel._meta.get_field("author").model is Book
    assert Novel.get_author is Book.get_author
    assert Novel.set_editor.alters_data is True
    assert not hasattr(Book, "get_editor")


@pytest.mark.django_db
def test_mti_child_set_writes_the_parent_table(author: Author) -> None:
    novel = factories.NovelFactory(title="N", genre="noir")
    updated = row_state(novel)["updated"]
    novel.genre = "unsaved edit"
    with CaptureQueriesContext(connection) as captured:
        novel.set_author(author)
    assert len(captured) == 1
    sql = _tables(captured)[0]
    assert (
        sql.startswith("update") and Book._meta.db_table in sql and Novel._meta.db_table not in sql
    )
    row = row_state(novel)
    assert row["author_id"] == author.pk
    assert row["genre"] == "noir"  # the unsaved edit was not written
    assert row["updated"] > updated  # the parent's auto_now column is written
    assert Book.objects.get(pk=novel.pk).get_author() == author
    fresh = Novel.objects.get(pk=novel.pk)
    assert fresh.get_author() == author


@pytest.mark.django_db
def test_mti_child_own_field_writes_the_child_table(author: Author) -> None:
    novel = factories.NovelFactory()
    updated = row_state(novel)["updated"]
    with CaptureQueriesContext(connection) as captured:
        novel.set_editor(author)
    # The editor column on the child table, and the inherited auto_now column on the parent's.
    child, parent = sorted(_tables(captured), key=lambda sql: Novel._meta.db_table not in sql)
    assert child.startswith("update") and Novel._meta.db_table in child and "editor_id" in child
    assert parent.startswith("update") and Book._meta.db_table in parent and "updated" in parent
    assert "author_id" not in parent
    assert row_state(novel)["editor_id"] == author.pk
    assert row_state(novel)["updated"] > updated
    assert Novel.objects.get(pk=novel.pk).get_editor() == author
    assert Novel.objects.get(pk=novel.pk).get_author() is None


@pytest.mark.django_db
def test_mti_child_create(publisher: Publisher) -> None:
    novel = factories.NovelFactory(publisher=publisher)
    made = novel.create_author(name="Novelist")
    editor = novel.create_editor({"name": "Editor"})
    fresh = Novel.objects.get(pk=novel.pk)
    assert (fresh.author_id, fresh.editor_id) == (made.pk, editor.pk)
    assert fresh.get_publisher() == publisher


# ----------------------------------------------------------------- proxies


@pytest.mark.django_db
def test_proxy_owner_has_the_methods(author: Author, django_assert_num_queries: Any) -> None:
    book = ProxyBook.objects.get(pk=factories.BookFactory().pk)
    book.set_author(author)
    assert row_state(book)["author_id"] == author.pk
    with django_assert_num_queries(1):
        fresh = ProxyBook.objects.get(pk=book.pk)
    with django_assert_num_queries(1):
        assert fresh.get_author() == author
    with django_assert_num_queries(0):
        assert fresh.get_author() == author


@pytest.mark.django_db
def test_proxy_instance_is_a_valid_value(book: Book, author: Author) -> None:
    proxy = ProxyAuthor.objects.get(pk=author.pk)
    book.set_author(proxy)
    assert row_state(book)["author_id"] == author.pk
    assert book.get_author(scope=False) is proxy


@pytest.mark.django_db
def test_field_pointing_at_a_proxy(author: Author) -> None:
    owner = ProxyTargetBook.objects.create(title="T")
    owner.set_author(author)  # the concrete model's instance is accepted
    fresh = ProxyTargetBook.objects.get(pk=owner.pk)
    got = fresh.get_author()
    assert type(got) is ProxyAuthor and got.pk == author.pk
    Author.all_objects.filter(pk=author.pk).update(active=False)
    fresh.refresh_from_db()
    assert fresh.get_author(scope="active_authors") is None  # the proxy inherits the managers
    made = fresh.create_author(name="Via proxy")
    assert type(made) is ProxyAuthor
    assert row_state(fresh)["author_id"] == made.pk
