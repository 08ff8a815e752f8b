"""Django templates call zero-argument methods: the writing ones must not run."""

from __future__ import annotations

import pytest
from django.template import engines

from tests import factories
from tests.conftest import memory_state, row_state
from tests.models import Author, Book, Profile, Publisher


def render(source: str, **context: object) -> str:
    return engines["django"].from_string(source).render(context)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ book.create_author }}",
        "{{ book.set_author }}",
        "{{ book.create_publisher }}",
        "{{ book.set_publisher }}",
        "{{ book.acreate_author }}",
        "{{ book.aset_author }}",
        "{% for x in book.create_author %}{{ x }}{% endfor %}",
        "{% with made=book.create_author %}{{ made.pk }}{% endwith %}",
        "{% if book.set_author %}set{% endif %}",
    ],
)
def test_writing_methods_are_not_called(source: str, book: Book) -> None:
    author = factories.AuthorFactory()
    book.set_author(author)
    counts = (Author.all_objects.count(), Publisher.objects.count(), Book.objects.count())
    before = (row_state(book), memory_state(book))
    assert render(source, book=book).strip() == ""
    assert (Author.all_objects.count(), Publisher.objects.count(), Book.objects.count()) == counts
    assert (row_state(book), memory_state(book)) == before


@pytest.mark.django_db
def test_get_renders_the_related_object(book: Book) -> None:
    author = factories.AuthorFactory(name="Ursula")
    book.set_author(author)
    fresh = Book.objects.get(pk=book.pk)
    assert (
        render("{{ book.get_author }} / {{ book.get_author.name }}", book=fresh)
        == "Ursula / Ursula"
    )
    assert render("{{ book.get_publisher }}", book=fresh) == book.publisher.name


@pytest.mark.django_db
def test_get_renders_none_for_a_hidden_or_missing_author(book: Book) -> None:
    assert render("{{ book.get_author|default:'nobody' }}", book=book) == "nobody"
    author = factories.AuthorFactory(deleted=True)
    book.set_author(author)
    fresh = Book.objects.get(pk=book.pk)
    assert render("{{ book.get_author|default:'nobody' }}", book=fresh) == "nobody"


@pytest.mark.django_db
def test_one_to_one_writers_are_not_called() -> None:
    profile = factories.ProfileFactory()
    before = (row_state(profile), memory_state(profile), Author.all_objects.count())
    assert render("{{ p.create_author }}{{ p.set_author }}{{ p.get_author }}", p=profile) == "None"
    assert (row_state(profile), memory_state(profile), Author.all_objects.count()) == before
    assert Profile.objects.count() == 1
