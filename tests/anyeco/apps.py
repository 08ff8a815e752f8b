from __future__ import annotations

from django.apps import AppConfig


class AnyecoConfig(AppConfig):
    """BelongsToAnyField owners for the libraries that read a model's fields
    (tests/test_any_ecosystem.py), and a target with a one-to-one."""

    name = "tests.anyeco"
    label = "anyeco"
    default_auto_field = "django.db.models.BigAutoField"
