from __future__ import annotations

from django.apps import AppConfig


class EcosystemConfig(AppConfig):
    """Models built on the libraries users combine belongsto_ext with."""

    name = "tests.ecosystem"
    label = "ecosystem"
    default_auto_field = "django.db.models.BigAutoField"
