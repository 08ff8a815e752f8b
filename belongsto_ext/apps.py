from __future__ import annotations

from django.apps import AppConfig


class BelongsToExtConfig(AppConfig):
    name = "belongsto_ext"
    verbose_name = "BelongsTo associations"
