"""``on_delete`` for a BelongsToAnyField: the link model and its hidden relations.

The field gets a link model (:func:`link_model`): an unmanaged model Django
creates for it, as it creates a many-to-many field's through model, over the
owner's table, with one hidden, column-less relation per allowed target model
(:class:`TargetLink`). Django's ``Collector`` finds each relation's reverse side
among the target's relations, as it finds a ``ForeignKey``'s; the handlers below
turn the link model's rows into the owners, loaded by the owner's base manager.
Deleting a target (``Model.delete()``, ``QuerySet.delete()``, the admin's
confirmation page, which lists what would go) then cascades to, nulls, protects
or restricts the owners pointing at it. The owner model itself gets nothing: its
``_meta.fields`` and ``_meta.get_fields()`` are a ``GenericForeignKey``'s, which
libraries that copy or list a model's fields (django-simple-history,
django-filter, django-import-export, GraphQL types) rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.db import models
from django.db.models import Model
from django.db.models.deletion import ProtectedError
from django.db.models.lookups import Exact, In, Lookup

from .. import _compat

# The field (contenttypes/fields.py, above this module): what is read of it is
# named where it is read.
BelongsToAnyField = Any

__all__ = ["HANDLERS", "TargetLink", "link_model"]

# ------------------------------------------------------------- on_delete
#
# Django calls an on_delete handler as handler(collector, field, sub_objs, using),
# ``field`` being the relation whose reverse side it found on the deleted model:
# here a TargetLink, ``sub_objs`` a QuerySet of its link model's rows, left
# unevaluated (``lazy_sub_objs``) for :func:`_owners` to turn into the owners.
# The Collector calls (in _compat) are the ones Django's own CASCADE, SET_NULL and
# RESTRICT make.


def _owners(link: TargetLink, rows: Any, using: str) -> Any:
    """The owners behind the link model's ``rows``, by the owner's base manager, so
    the Collector sees (and signals, logs, deletes) real owners: a QuerySet (one
    query once evaluated, none if the Collector can delete it as it stands).

    When the Collector joined the targets to the rows (the admin's NestedObjects
    does, to nest each owner under its target), a list instead, each owner with
    its target cached as ``owner.<field>``, so that listing them asks nothing more.
    """
    field = link.any_field
    owners = field.model._base_manager.db_manager(using).filter(pk__in=rows.values("pk"))
    if not _compat.joins_related(rows):  # what the Collector reads too
        return owners
    targets = {row.pk: link.get_cached_value(row, default=None) for row in rows}
    found = list(owners) if targets else []
    for owner in found:
        target = targets.get(owner.pk)
        if target is not None:
            field.set_cached_value(owner, target)
    return found


def _cascade(collector: Any, link: TargetLink, rows: Any, using: str) -> None:
    # The admin nests each owner under owner.<field>.
    _compat.collector_cascade(
        collector, _owners(link, rows, using), link.remote_field.model, link.any_field.name
    )


def _set_null(collector: Any, link: TargetLink, rows: Any, using: str) -> None:
    # Both columns, by primary key: an UPDATE filtered on the content type would
    # find nothing once the first UPDATE had nulled it.
    owners = list(_owners(link, rows, using))
    meta = link.any_field.model._meta
    for name in (link.any_field.ct_field, link.any_field.fk_field) if owners else ():
        _compat.collector_update(collector, meta.get_field(name), None, owners)


def _protect(collector: Any, link: TargetLink, rows: Any, using: str) -> None:
    owners = list(_owners(link, rows, using))
    if owners:
        raise ProtectedError(
            f"Cannot delete some instances of model '{link.remote_field.model.__name__}' "
            f"because they are referenced through a protected BelongsToAnyField: "
            f"'{link.any_field.model.__name__}.{link.any_field.name}'",
            set(owners),
        )


def _restrict(collector: Any, link: TargetLink, rows: Any, using: str) -> None:
    owners = list(_owners(link, rows, using))
    if owners:
        _compat.collector_restrict(collector, link, owners, link.any_field.model)


for _handler in (_cascade, _set_null, _protect, _restrict):
    _handler.lazy_sub_objs = True  # type: ignore[attr-defined]

HANDLERS: dict[Any, Callable[..., None] | None] = {
    models.DO_NOTHING: None,
    models.CASCADE: _cascade,
    models.SET_NULL: _set_null,
    models.PROTECT: _protect,
    models.RESTRICT: _restrict,
}


# -------------------------------------------------------- the link model


class _OwnersIn(Lookup):
    """``<link>__in=targets``, as Django's ``Collector`` asks for the rows pointing
    at the rows it deletes: those whose content type is the link's model and
    whose object id is one of the targets' keys (converted by the object id
    field, which may be a text column holding integer keys)."""

    lookup_name = "in"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return self.rhs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        link: TargetLink = self.lhs.output_field
        alias = self.lhs.alias
        meta = link.model._meta
        ct_field: Any = meta.get_field(link.any_field.ct_field)
        fk_field: Any = meta.get_field(link.any_field.fk_field)
        keys = [
            fk_field.to_python(obj.pk if isinstance(obj, models.Model) else obj) for obj in self.rhs
        ]
        ct_ids = link.content_type_ids(connection.alias)
        ct_lookup: Lookup = (
            Exact(ct_field.get_col(alias), ct_ids[0])
            if len(ct_ids) == 1
            else In(ct_field.get_col(alias), ct_ids)
        )
        ct_sql, ct_params = compiler.compile(ct_lookup)
        fk_sql, fk_params = compiler.compile(In(fk_field.get_col(alias), keys))
        return f"({ct_sql} AND {fk_sql})", (*ct_params, *fk_params)


class TargetLink(models.ForeignObject):  # type: ignore[type-arg, unused-ignore]
    """The relation from a field's link model to one allowed target model,
    through the object id column and restricted to that model's content type.

    A private field of the link model, named ``<field>[<app_label>.<model_name>]``,
    with no column and no checks of its own. Its reverse side, hidden, is how
    Django's deletion machinery reaches the owners; its ``on_delete`` is the
    field's. Made by :func:`link_model`.
    """

    def __init__(
        self,
        any_field: BelongsToAnyField,
        target: type[models.Model],
        link_models: tuple[type[models.Model], ...],
        on_delete: Callable[..., None],
    ) -> None:
        self.any_field = any_field
        self.link_models = link_models  # the allowed models stored as this target
        super().__init__(
            target,
            on_delete=on_delete,
            from_fields=[any_field.fk_field],
            to_fields=[None],  # type: ignore[list-item]  # the target's primary key
            related_name="+",
            null=True,
            blank=True,
            editable=False,
            serialize=False,
        )

    def contribute_to_class(
        self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any
    ) -> None:
        kwargs["private_only"] = True
        super().contribute_to_class(cls, name, *args, **kwargs)

    def clone(self) -> TargetLink:
        on_delete: Callable[..., None] = self.remote_field.on_delete  # type: ignore[assignment, unused-ignore]
        return TargetLink(self.any_field, self.remote_field.model, self.link_models, on_delete)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return []  # the BelongsToAnyField checks its configuration

    def content_type_ids(self, using: str | None) -> list[int]:
        manager = ContentType.objects.db_manager(using)
        concrete = self.any_field.for_concrete_model
        return sorted(
            {manager.get_for_model(m, for_concrete_model=concrete).pk for m in self.link_models}
        )

    def get_extra_restriction(self, alias: str, related_alias: str) -> Any:
        # A join (the admin's select_related()) matches the content type too.
        ct_field: Any = self.model._meta.get_field(self.any_field.ct_field)
        return In(ct_field.get_col(related_alias), self.content_type_ids(None))


def _column(field: Any, *, primary_key: bool = False) -> models.Field[Any, Any]:
    """A plain field over ``field``'s column, of the type of the values it holds
    (a foreign key's column as its target's key; an auto key as its integer)."""
    column = field.column
    while field.is_relation:
        field = field.target_field
    if isinstance(field, models.fields.AutoFieldMixin) and not primary_key:
        plain = next(
            kind
            for kind in type(field).__mro__
            if issubclass(kind, models.IntegerField)
            and not issubclass(kind, models.fields.AutoFieldMixin)
        )
        return plain(db_column=column, null=True)
    _name, _path, args, kwargs = field.deconstruct()
    for option in ("unique", "db_index", "default", "db_default", "choices", "validators"):
        kwargs.pop(option, None)
    kwargs.update(db_column=column, primary_key=primary_key, null=not primary_key)
    copy: models.Field[Any, Any] = type(field)(*args, **kwargs)
    return copy


def link_model(field: BelongsToAnyField, targets: Iterable[type[Model]]) -> type[Model]:
    """The model that carries ``field``'s :class:`TargetLink` to each of ``targets``.

    Unmanaged, over the owner's table, with three fields (the owner's primary
    key, content type and object id columns) and the links; auto-created (as a
    many-to-many field's through model is), so migrations, content types,
    permissions and system checks pass it by. Registered in the owner's app
    registry, where Django's reverse-relation graph finds the links.
    """
    owner = field.model
    meta = owner._meta
    by_concrete: dict[type[Model], list[type[Model]]] = {}
    for target in targets:
        concrete: Any = target._meta.concrete_model
        by_concrete.setdefault(concrete, []).append(
            concrete if field.for_concrete_model else target
        )
    handler = HANDLERS[field.on_delete]
    assert handler is not None  # contribute_to_class() asks for links only then
    attrs: dict[str, Any] = {
        "__module__": owner.__module__,
        "Meta": type(
            "Meta",
            (),
            {
                "app_label": meta.app_label,
                "apps": meta.apps,
                "db_table": meta.db_table,
                "managed": False,
                "auto_created": owner,
                "default_permissions": (),
            },
        ),
        meta.pk.attname: _column(meta.pk, primary_key=True),
        field.ct_field: _column(field.ct),
        field.fk_field: _column(field.fk),
    }
    for concrete, stored_as in by_concrete.items():
        link = TargetLink(field, concrete, tuple(dict.fromkeys(stored_as)), handler)
        attrs[f"{field.name}[{concrete._meta.label_lower}]"] = link
    # Named as Django names a many-to-many through model: <Owner>_<field>. Django's
    # Collector names a protected relation "'<Owner>_<field>.<field>[<app.target>]'".
    model: type[Model] = type(f"{meta.object_name}_{field.name}", (models.Model,), attrs)
    return model


TargetLink.register_lookup(_OwnersIn)
