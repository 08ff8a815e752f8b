from __future__ import annotations

from django.apps import AppConfig


class ScopedConfig(AppConfig):
    """Targets whose scopes depend on the context (a tenant, a thread, a request),
    django-permanent's soft delete, and relations that declare ``scopes=``."""

    name = "tests.scoped"
    label = "scoped"
    default_auto_field = "django.db.models.BigAutoField"
