"""What ``rebuild_counters`` and ``check_counters`` share: their arguments and
the relations they name."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, models, router

from belongsto_ext.counters import counted_relations
from belongsto_ext.relation import KeyRelation as Field
from belongsto_ext.relation import is_key_relation

Relation = tuple[type[models.Model], Field]


class CountedRelationsCommand(BaseCommand):
    """A command over ``app_label.Model.field`` arguments (default: every relation
    with ``counter_cache`` the router allows on ``--database``)."""

    verb = ""  # "rebuild", "check": for the help texts

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args",
            metavar="app_label.Model.field",
            nargs="*",
            help=(
                f"Only {self.verb} these relations. Otherwise every relation with "
                "counter_cache of the installed apps that the database router allows "
                "on the database."
            ),
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help=f'Nominates a database to {self.verb} the counters on. Defaults to the "default" '
            "database.",
        )

    def relations(self, labels: tuple[str, ...], database: str) -> list[Relation]:
        """The relations the arguments name, every one checked before any is
        used; none named: every counted relation on ``database``."""
        if labels:
            return [self.relation(label) for label in labels]
        return [
            (model, field)
            for model, field in counted_relations()
            if _allowed(database, model) and _allowed(database, field.related_model)
        ]

    def relation(self, label: str) -> Relation:
        """The (model, field) an ``app_label.Model.field`` argument names."""
        parts = label.split(".")
        if len(parts) != 3 or not all(parts):
            raise CommandError(
                f"{label!r} is not a relation: expected app_label.Model.field, "
                f"e.g. library.Review.book."
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
        if not is_key_relation(field) or not field.counter_cache:
            raise CommandError(
                f"{label!r} is not a BelongsToField or BelongsToOneField with counter_cache."
            )
        return model, field

    def handle(self, *labels: str, **options: Any) -> None:
        raise NotImplementedError


def _allowed(database: str, model: type[models.Model]) -> bool:
    """Whether the router lets ``model``'s table live on ``database``."""
    meta = model._meta
    return bool(router.allow_migrate(database, meta.app_label, model_name=meta.model_name))
