"""Templates and the writing methods.

Django's engine calls a method it is handed with no arguments, unless the method
is marked ``alters_data``; Jinja2's sandbox calls any method a template names,
with the template's arguments, unless it is marked ``alters_data``. The writers
(``set_``, ``create_``, ``aset_``, ``acreate_``) must run in neither.
"""

from __future__ import annotations

import pytest
from django.template import engines
from django.template.backends.base import BaseEngine

from tests import factories
from tests.helpers import memory_state, row_state
from tests.models import Author, Book, Profile, Publisher


def render(source: str, **context: object) -> str:
    return engines["django"].from_string(source).render(context)


def row_counts() -> tuple[int, int, int]:
    return Author.all_objects.count(), Publisher.objects.count(), Book.objects.count()


def assert_renders_nothing_and_changes_nothing(source: str, book: Book) -> None:
    """``source`` renders empty for a book with an author, and no row or attribute changes."""
    author = factories.AuthorFactory()
    book.set_author(author)
    counts = row_counts()
    before = (row_state(book), memory_state(book))
    assert render(source, book=book).strip() == ""
    assert row_counts() == counts
    assert (row_state(book), memory_state(book)) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ book.create_author }}",
        "{{ book.create_publisher }}",
        "{{ book.acreate_author }}",
        "{{ book.acreate_publisher }}",
        "{% for x in book.create_author %}{{ x }}{% endfor %}",
        "{% with made=book.create_author %}{{ made.pk }}{% endwith %}",
        "{% if book.create_author %}made{% endif %}",
    ],
)
def test_writers_that_need_no_argument_are_not_called(source: str, book: Book) -> None:
    """Django calls these unless they alter data: ``create_`` would add a row,
    ``acreate_`` would render an unawaited coroutine."""
    assert_renders_nothing_and_changes_nothing(source, book)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ book.set_author }}",
        "{{ book.set_publisher }}",
        "{{ book.aset_author }}",
        "{{ book.aset_publisher }}",
        "{% if book.set_author %}set{% endif %}",
    ],
)
def test_writers_that_need_a_value_render_nothing(source: str, book: Book) -> None:
    """Django cannot pass the value these need, so they render nothing and change
    nothing (marked or not: the sandbox tests below show they are marked)."""
    assert_renders_nothing_and_changes_nothing(source, book)


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
    assert (
        render(
            "{{ p.create_author }}{{ p.acreate_author }}{{ p.set_author }}{{ p.get_author }}",
            p=profile,
        )
        == "None"
    )
    assert (row_state(profile), memory_state(profile), Author.all_objects.count()) == before
    assert Profile.objects.count() == 1


# ------------------------------------------------- Jinja2's sandbox


@pytest.fixture
def sandbox() -> BaseEngine:
    """Django's Jinja2 backend with the sandboxed environment, as a project that
    lets its users write templates configures it (jinja2 is in the test extra)."""
    from django.template.backends.jinja2 import Jinja2

    return Jinja2(
        {
            "NAME": "sandbox",
            "DIRS": [],
            "APP_DIRS": False,
            "OPTIONS": {"environment": "jinja2.sandbox.SandboxedEnvironment"},
        }
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ book.set_author(other) }}",
        "{{ book.set_author(None) }}",
        "{{ book.set_publisher(other_publisher) }}",
        "{{ book.create_author(name='Made') }}",
        "{{ book.create_publisher({'name': 'Made'}) }}",
        "{{ book.aset_author(other) }}",
        "{{ book.aset_publisher(other_publisher) }}",
        "{{ book.acreate_author(name='Made') }}",
        "{{ profile.set_author(other) }}",
        "{{ profile.create_author(name='Made') }}",
        "{{ profile.aset_author(other) }}",
        "{{ profile.acreate_author(name='Made') }}",
    ],
)
def test_the_sandbox_refuses_every_writer_called_with_arguments(
    source: str, book: Book, sandbox: BaseEngine
) -> None:
    from jinja2.exceptions import SecurityError

    book.set_author(factories.AuthorFactory())
    profile = factories.ProfileFactory()
    context = {
        "book": book,
        "profile": profile,
        "other": factories.AuthorFactory(),
        "other_publisher": factories.PublisherFactory(),
    }
    counts = row_counts()
    before = [(row_state(obj), memory_state(obj)) for obj in (book, profile)]
    template = sandbox.from_string(source)
    with pytest.raises(SecurityError, match="is not safely callable"):
        template.render(context)
    assert row_counts() == counts
    assert [(row_state(obj), memory_state(obj)) for obj in (book, profile)] == before


@pytest.mark.django_db
def test_the_sandbox_calls_get_with_its_arguments(book: Book, sandbox: BaseEngine) -> None:
    book.set_author(factories.AuthorFactory(name="Ursula", deleted=True))
    fresh = Book.objects.get(pk=book.pk)
    source = "{{ book.get_author() }} / {{ book.get_author(scope='all_objects').name }}"
    assert sandbox.from_string(source).render({"book": fresh}) == "None / Ursula"
