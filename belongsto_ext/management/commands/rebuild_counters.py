"""``python manage.py rebuild_counters [app_label.Model.field ...]``: recompute
the ``counter_cache`` columns of BelongsTo relations from the owner rows.

The remedy for what bypasses model signals (``QuerySet.update()``,
``bulk_create()``, ``bulk_update()``, deletes the database does by itself):
one UPDATE per relation, through :func:`belongsto_ext.rebuild_counters`.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, models, router

from belongsto_ext.counters import counted_relations, rebuild_counters
from belongsto_ext.fields import BelongsToMixin

Relation = tuple[type[models.Model], BelongsToMixin]


class Command(BaseCommand):
    help = (
        "Recomputes the counter_cache columns of BelongsTo relations: each target row "
        "gets the number of owner rows pointing at it (zero for none), one UPDATE per "
        "relation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args",
            metavar="app_label.Model.field",
            nargs="*",
            help=(
                "Only rebuild these relations. Otherwise every relation with "
                "counter_cache of the installed apps that the database router allows "
                "on the database."
            ),
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help='Nominates a database to rebuild the counters on. Defaults to the "default" '
            "database.",
        )

    def handle(self, *labels: str, **options: Any) -> None:
        database = options["database"]
        verbosity = options["verbosity"]
        if labels:
            # Every argument is checked before any counter is written.
            relations = [self.relation(label) for label in labels]
        else:
            relations = [
                (model, field)
                for model, field in counted_relations()
                if _allowed(database, model) and _allowed(database, field.related_model)
            ]
            if not relations and verbosity >= 1:
                self.stdout.write("No relation with counter_cache to rebuild.")
        for model, field in relations:
            updated = rebuild_counters(model, field.name, using=database)
            if verbosity >= 1:
                target = field.related_model._meta.label
                self.stdout.write(
                    f"Rebuilt {model._meta.label}.{field.name}: {updated} {target} "
                    f"row(s) updated ({field.counter_cache})."
                )

    def relation(self, label: str) -> Relation:
        """The (model, field) an ``app_label.Model.field`` argument names."""
        parts = label.split(".")
        if len(parts) != 3 or not all(parts):
            raise CommandError(
                f"{label!r} is not a relation: expected app_label.Model.field, "
                f"e.g. library.Book.author."
            )
        app_label, model_name, name = parts
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError as exc:
            raise CommandError(f"{label!r}: {exc}") from exc
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist as exc:
            raise CommandError(f"{label!r}: {model.__name__} has no field named {name!r}.") from exc
        if not isinstance(field, BelongsToMixin) or not field.counter_cache:
            raise CommandError(
                f"{label!r} is not a BelongsToField or BelongsToOneField with counter_cache."
            )
        return model, field


def _allowed(database: str, model: type[models.Model]) -> bool:
    """Whether the router lets ``model``'s table live on ``database``."""
    meta = model._meta
    return bool(router.allow_migrate(database, meta.app_label, model_name=meta.model_name))
