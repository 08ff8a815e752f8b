"""The app: checks that need the whole project, and the triggers ``migrate`` installs."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.core import checks
from django.db import models
from django.db.models.signals import post_migrate


class BelongsToExtConfig(AppConfig):
    name = "belongsto_ext"
    verbose_name = "BelongsTo associations"

    def ready(self) -> None:
        from . import counters, policy

        checks.register(check_admin_formfield_overrides, checks.Tags.admin)
        checks.register(policy.check_settings)
        checks.register(counters.check_triggers, checks.Tags.database)
        # The tables' counter_cache=/touch= triggers, wherever migrate makes
        # or updates tables (test databases included).
        post_migrate.connect(counters.install_after_migrate, dispatch_uid="belongsto_ext")


def check_admin_formfield_overrides(**kwargs: Any) -> list[checks.CheckMessage]:
    """W002: a ``ModelAdmin.formfield_overrides`` entry for ``ForeignKey`` (or
    ``OneToOneField``) that the admin will not apply to a BelongsTo field.

    The admin looks a relation's overrides up by the field's exact class, so a
    ``BelongsToField`` needs its own entry. Patching the admin is not this
    app's business: the warning names the remedy instead.
    """
    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib.admin.sites import all_sites

    from . import _compat
    from .fields import BelongsToMixin

    messages: list[checks.CheckMessage] = []
    for site in all_sites:
        for model, model_admin in _compat.admin_registry(site).items():
            admins = [(type(model_admin), model)]
            admins += [(inline, inline.model) for inline in model_admin.inlines]
            for admin_class, admin_model in admins:
                overrides = admin_class.formfield_overrides
                missed: dict[tuple[type, type], list[str]] = {}
                for field in admin_model._meta.fields:
                    if isinstance(field, BelongsToMixin):
                        base: type = (
                            models.OneToOneField
                            if isinstance(field, models.OneToOneField)
                            else models.ForeignKey
                        )
                        if base in overrides and type(field) not in overrides:
                            missed.setdefault((type(field), base), []).append(field.name)
                for (ours, base), names in missed.items():
                    messages.append(_warning(admin_class, admin_model, ours, base, names))
    return messages


def _warning(
    admin_class: type, model: type[models.Model], ours: type, django: type, names: list[str]
) -> checks.Warning:
    fields = ", ".join(f"{model.__name__}.{name}" for name in names)
    return checks.Warning(
        f"formfield_overrides[{django.__name__}] is not applied to {fields}.",
        hint=(
            f"The admin looks overrides up by the field's exact class: add the same "
            f"entry under {ours.__name__} (from belongsto_ext import {ours.__name__})."
        ),
        obj=admin_class,
        id="belongsto_ext.W002",
    )
