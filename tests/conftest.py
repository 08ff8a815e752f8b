"""Shared fixtures: ready-made rows from the test models' factories, saves made to
fail (``fail_saves``), tables for models built in a test (``made_by_hand``). The
factories are in tests/factories.py, the plain helpers (snapshots, fresh rows,
query capture...) in tests/helpers.py, the skip marks in tests/markers.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import factories
from tests.helpers import failing_saves
from tests.models import Author, Book, Publisher


@pytest.fixture
def publisher() -> Any:
    return factories.PublisherFactory()


@pytest.fixture
def author() -> Any:
    return factories.AuthorFactory()


@pytest.fixture
def book(publisher: Any) -> Any:
    return factories.BookFactory(publisher=publisher)


@pytest.fixture
def linked_book(publisher: Publisher, author: Author) -> Book:
    """A saved book pointing at ``author``, with the author in both of its caches."""
    book = factories.BookFactory(publisher=publisher, author=author)
    book = Book.objects.get(pk=book.pk)
    assert book.author == author  # Django's cache
    assert book.get_author(scope="active_authors") == author  # the scoped cache
    return book


@pytest.fixture
def fail_saves() -> Iterator[Callable[..., None]]:
    """``fail_saves(Model, after_write=..., error=...)``: from the call to the end of
    the test, every save of ``Model`` raises (:func:`tests.helpers.failing_saves`)."""
    with contextlib.ExitStack() as stack:
        yield lambda *args, **kwargs: stack.enter_context(failing_saves(*args, **kwargs))


@pytest.fixture
def made_by_hand() -> Any:
    """Create tables for models built in a test (``isolate_apps``) with the schema
    editor, and drop them afterwards: ``made_by_hand(ModelA, ModelB)``."""
    from django.db import connection

    made: list[Any] = []

    def create(*models_: Any) -> None:
        with connection.schema_editor() as editor:
            for model in models_:
                editor.create_model(model)
                made.append(model)

    yield create
    with connection.schema_editor() as editor:
        for model in reversed(made):
            editor.delete_model(model)
