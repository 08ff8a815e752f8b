"""Shared fixtures: the test models' factories, ready-made rows, and a snapshot
helper for "nothing changed" assertions."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models

from tests import factories


@pytest.fixture
def publisher() -> Any:
    return factories.PublisherFactory()


@pytest.fixture
def author() -> Any:
    return factories.AuthorFactory()


@pytest.fixture
def book(publisher: Any) -> Any:
    return factories.BookFactory(publisher=publisher)


def row_state(instance: models.Model) -> dict[str, Any]:
    """The instance's row as the database holds it now (concrete column values)."""
    model = type(instance)
    return (
        model._base_manager.filter(pk=instance.pk)
        .values(*[f.attname for f in model._meta.concrete_fields])
        .get()
    )


def memory_state(instance: models.Model) -> dict[str, Any]:
    """The instance's in-memory attribute values and Django's cache entries."""
    return {
        "attrs": {k: v for k, v in instance.__dict__.items() if k != "_state"},
        "db": instance._state.db,
        "adding": instance._state.adding,
        "cache": dict(instance._state.fields_cache),
    }
