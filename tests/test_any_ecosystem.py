"""BelongsToAnyField with the libraries that read a model's fields, each run for real:
django-simple-history, django-filter, django-import-export, strawberry-graphql-django,
graphene-django and Django REST framework. ``tests.anyeco.Note`` (ours, with
``on_delete=CASCADE``) and ``PlainNote`` (Django's ``GenericForeignKey``) are twins: what
works for one must work, the same way, for the other.

Also strawberry-graphql-django with a ``BelongsToField``, registered as docs/libraries.md says.
No ``from __future__ import annotations``: strawberry reads the annotations of the types
these tests declare inside functions.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import models

from belongsto_ext.contenttypes.deletion import TargetLink
from tests.anyeco.models import Note, PlainNote
from tests.models import AnyComment, AnyPhoto, AnyPost, AnyTag, Author, Book, Publisher

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parent.parent / "docs" / "libraries.md"
TWINS = pytest.mark.parametrize("model", [Note, PlainNote], ids=["BelongsToAnyField", "GFK"])


def names(fields: Any) -> list[str]:
    return [f.name for f in fields]


# ============================================================ _meta


def test_the_owner_has_the_fields_a_generic_foreign_key_gives_it() -> None:
    assert names(Note._meta.fields) == names(PlainNote._meta.fields)
    assert names(Note._meta.get_fields()) == names(PlainNote._meta.get_fields())
    assert names(Note._meta.private_fields) == names(PlainNote._meta.private_fields) == ["target"]
    assert names(AnyComment._meta.fields) == ["id", "body", "content_type", "object_id", "updated"]


def test_the_targets_list_no_new_relation() -> None:
    """The links' reverse sides are hidden: only the Collector asks for them."""
    assert names(AnyPost._meta.get_fields()) == ["id", "title", "published", "comments"]
    assert names(AnyPost._meta.related_objects) == []
    links = [
        rel.related_model
        for rel in AnyPost._meta.get_fields(include_hidden=True)
        if isinstance(rel.remote_field, TargetLink)
    ]
    assert Note._meta.get_field("target").link_model in links  # what the Collector follows
    assert all(link._meta.auto_created for link in links)


def test_the_link_model_is_left_out_of_migrations_content_types_and_checks() -> None:
    from django.apps import apps
    from django.core.management import call_command

    link = Note._meta.get_field("target").link_model
    assert link is not None and link._meta.auto_created is Note and not link._meta.managed
    assert link not in apps.get_models()
    assert not ContentType.objects.filter(app_label="anyeco", model__startswith="note_").exists()
    call_command("makemigrations", "tests", "anyeco", "--check", "--dry-run", verbosity=0)


# ================================================= django-simple-history


def test_simple_history_records_every_save_and_the_cascaded_delete() -> None:
    post, photo = AnyPost.objects.create(title="p"), AnyPhoto.objects.create(caption="ph")
    note = Note.objects.create(body="hello", target=post)
    note.set_target(photo)
    note.body = "edited"
    note.save()
    photo.delete()  # cascades to the note
    assert not Note.objects.filter(pk=note.pk).exists()
    history = list(Note.history.filter(id=note.pk).order_by("history_id"))
    assert [h.history_type for h in history] == ["+", "~", "~", "-"]
    assert [h.body for h in history] == ["hello", "hello", "edited", "edited"]
    assert history[1].object_id == photo.pk or history[1].object_id is not None


@TWINS
def test_simple_history_on_both_twins(model: type[models.Model]) -> None:
    post = AnyPost.objects.create(title="p")
    note: Any = model.objects.create(body="b", target=post)
    pk = note.pk
    post.delete()  # BelongsToAnyField cascades, GenericForeignKey leaves the note
    note.delete() if model is PlainNote else None
    history = model.history.filter(id=pk).order_by("history_id")  # type: ignore[attr-defined]
    assert [h.history_type for h in history] == ["+", "-"]


# ========================================================== django-filter


@TWINS
def test_a_filterset_with_every_field(model: type[models.Model]) -> None:
    django_filters = pytest.importorskip("django_filters")

    meta = type("Meta", (), {"model": model, "fields": "__all__"})
    filterset_class = type("NoteFilter", (django_filters.FilterSet,), {"Meta": meta})
    post = AnyPost.objects.create(title="p")
    kept = model.objects.create(body="kept", target=post)
    model.objects.create(body="other", target=AnyPhoto.objects.create(caption="c"))
    ct = ContentType.objects.get_for_model(AnyPost)
    filterset = filterset_class({"content_type": ct.pk, "object_id": post.pk}, model.objects.all())
    assert sorted(filterset.filters) == ["body", "content_type", "object_id"]
    assert list(filterset.qs) == [kept]


# ==================================================== django-import-export


@TWINS
def test_an_export_has_the_models_columns_and_no_empty_ones(model: type[models.Model]) -> None:
    resources = pytest.importorskip("import_export.resources")

    meta = type("Meta", (), {"model": model})
    resource = type("NoteResource", (resources.ModelResource,), {"Meta": meta})()
    post = AnyPost.objects.create(title="p")
    model.objects.create(body="b", target=post)
    dataset = resource.export()
    assert dataset.headers == ["id", "body", "content_type", "object_id"]
    assert all(value not in (None, "") for value in dataset[0])


# ============================================== strawberry-graphql-django


@pytest.fixture
def belongs_to_registered() -> Iterator[None]:
    """The registration docs/libraries.md shows, run as written; taken back afterwards."""
    pytest.importorskip("strawberry_django")
    from strawberry_django.fields import types

    from belongsto_ext import BelongsToField, BelongsToOneField

    section = README.read_text().split("### strawberry-graphql-django", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    maps = (
        types.field_type_map,
        types.input_field_type_map,
        types.relay_field_type_map,
        types.relay_input_field_type_map,
    )
    exec(code.group(1), {})
    yield
    for type_map in maps:
        for cls in (BelongsToField, BelongsToOneField):
            type_map.pop(cls, None)  # type: ignore[call-overload]


def book_schema() -> Any:
    """A strawberry_django type with ``auto`` over Book (``author`` and ``publisher``
    are BelongsToFields), and a schema listing the books."""
    import strawberry
    import strawberry_django
    from strawberry import auto

    @strawberry_django.type(Book)
    class BookType:
        title: auto
        author: auto
        publisher: auto

    @strawberry.type
    class Query:
        books: list[BookType] = strawberry_django.field()

    return strawberry.Schema(query=Query)


def test_strawberry_auto_types_a_belongs_to_field_once_registered(
    belongs_to_registered: None,
) -> None:
    schema = book_schema()
    author = Author.objects.create(name="Le Guin")
    publisher = Publisher.objects.create(name="P")
    Book.objects.create(title="Lathe", author=author, publisher=publisher)
    result = schema.execute_sync("{ books { title author { pk } publisher { pk } } }")
    assert result.errors is None
    # Typed as strawberry types a ForeignKey with ``auto``: the related object's pk.
    assert result.data == {
        "books": [
            {
                "title": "Lathe",
                "author": {"pk": str(author.pk)},
                "publisher": {"pk": str(publisher.pk)},
            }
        ]
    }


def test_strawberry_without_the_registration_is_what_the_readme_says() -> None:
    pytest.importorskip("strawberry_django")
    # Raised when the type is built; graphql-core wraps it when the schema reads it.
    with pytest.raises((NotImplementedError, TypeError), match=r"Book\.author' has not been impl"):
        book_schema()


@TWINS
def test_strawberry_all_fields_of_the_owner(model: type[models.Model]) -> None:
    pytest.importorskip("strawberry_django")
    import strawberry
    import strawberry_django

    note_type = strawberry_django.type(model, fields="__all__", name=f"{model.__name__}Type")(
        type(f"{model.__name__}Type", (), {})
    )
    query = strawberry.type(
        type(
            "Query",
            (),
            {"__annotations__": {"notes": list[note_type]}, "notes": strawberry_django.field()},
        )  # type: ignore[valid-type]
    )
    schema = strawberry.Schema(query=query)
    model.objects.create(body="b", target=AnyPost.objects.create(title="p"))
    result = schema.execute_sync("{ notes { id body objectId } }")
    assert result.errors is None
    assert [n["body"] for n in result.data["notes"]] == ["b"]


# ========================================================= graphene-django


@TWINS
def test_graphene_all_fields_of_the_owner(model: type[models.Model]) -> None:
    pytest.importorskip(
        "graphene_django",
        reason="graphene 3 needs graphql-core<3.3, strawberry-graphql 3.3: not in the test extra",
    )
    import graphene
    from graphene_django import DjangoObjectType

    meta = type("Meta", (), {"model": model, "fields": "__all__"})
    note_type = type(f"{model.__name__}Node", (DjangoObjectType,), {"Meta": meta})
    query = type(
        "Query",
        (graphene.ObjectType,),
        {
            "notes": graphene.List(note_type),
            "resolve_notes": lambda root, info: model.objects.all(),
        },
    )
    schema = graphene.Schema(query=query)
    model.objects.create(body="b", target=AnyPost.objects.create(title="p"))
    result = schema.execute("{ notes { id body objectId } }")
    assert result.errors is None
    assert [n["body"] for n in result.data["notes"]] == ["b"]


# ================================================== Django REST framework


def test_a_model_serializer_refuses_a_model_that_models_does_not_allow() -> None:
    from rest_framework import serializers

    class CommentSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
        class Meta:
            model = AnyComment
            fields = ["body", "content_type", "object_id"]

    tag, post = AnyTag.objects.create(name="t"), AnyPost.objects.create(title="p")
    data = {"body": "b", "content_type": ContentType.objects.get_for_model(AnyTag).pk}
    serializer = CommentSerializer(data={**data, "object_id": tag.pk})
    assert not serializer.is_valid()
    assert serializer.errors == {
        "content_type": [
            "AnyComment.target cannot point at tests.AnyTag: it allows tests.AnyPost, "
            "tests.AnyPhoto only."
        ]
    }
    data["content_type"] = ContentType.objects.get_for_model(AnyPost).pk
    serializer = CommentSerializer(data={**data, "object_id": post.pk})
    assert serializer.is_valid(), serializer.errors
    assert serializer.save().target == post
