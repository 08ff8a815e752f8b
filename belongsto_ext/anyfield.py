"""BelongsToAnyField: the polymorphic belongs-to, a ``GenericForeignKey`` with
scopes, ``models=``, ``on_delete=`` and batch loading.

The owner keeps Django's two columns (a ``ForeignKey`` to ``ContentType`` and
an object id); nothing here adds a column, so swapping
``GenericForeignKey("content_type", "object_id")`` for this field needs no
migration.

``on_delete`` goes through Django's deletion machinery. The field gets a link
model (:func:`link_model`): an unmanaged model Django creates for it, as it
creates a many-to-many field's through model, over the owner's table, with one
hidden, column-less relation per allowed target model (:class:`TargetLink`).
Django's ``Collector`` finds each relation's reverse side among the target's
relations, as it finds a ``ForeignKey``'s; the handlers below turn the link
model's rows into the owners, loaded by the owner's base manager. Deleting a
target (``Model.delete()``, ``QuerySet.delete()``, the admin's confirmation
page, which lists what would go) then cascades to, nulls, protects or restricts
the owners pointing at it. The owner model itself gets nothing: its
``_meta.fields`` and ``_meta.get_fields()`` are a ``GenericForeignKey``'s, which
libraries that copy or list a model's fields (django-simple-history,
django-filter, django-import-export, GraphQL types) rely on. Without ``models=``
there is no model to link: any ``on_delete`` but ``DO_NOTHING`` is refused by a
system check.

The methods (``get_<name>``, ``set_<name>``, ``create_<name>``, their async twins
and ``is_<name>``) are written once below as module-level functions that take
the field, and bound per field by :func:`_make_methods`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.apps import apps as global_apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connections, models, router, transaction
from django.db.models import Model
from django.db.models.deletion import ProtectedError
from django.db.models.lookups import Exact, In, Lookup

from . import _compat, accessors, cache, scopes, types
from .cache import MISS
from .fields import BelongsToMixin, MethodSpec, install_methods, register_methods

__all__ = ["AllowedModels", "BelongsToAnyField", "TargetLink", "link_model"]

AnyScope = Any  # types.AnyScope: a scope, or a mapping {model or label: scope}


# ------------------------------------------------------------- on_delete
#
# Django calls an on_delete handler as handler(collector, field, sub_objs, using),
# ``field`` being the relation whose reverse side it found on the deleted model:
# here a TargetLink, ``sub_objs`` a QuerySet of its link model's rows, left
# unevaluated (``lazy_sub_objs``) for :func:`_owners` to turn into the owners.
# The Collector calls below (collect(), add_field_update(),
# add_restricted_objects(), add_dependency()) are the ones Django's own CASCADE,
# SET_NULL and RESTRICT make (5.2, 6.0, 6.1).


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
    if not rows.query.select_related:  # Query.select_related, which the Collector reads too
        return owners
    targets = {row.pk: link.get_cached_value(row, default=None) for row in rows}
    found = list(owners) if targets else []
    for owner in found:
        target = targets.get(owner.pk)
        if target is not None:
            field.set_cached_value(owner, target)
    return found


def _cascade(collector: Any, link: TargetLink, rows: Any, using: str) -> None:
    collector.collect(
        _owners(link, rows, using),
        source=link.remote_field.model,
        source_attr=link.any_field.name,  # the admin nests each owner under owner.<field>
        nullable=True,
        fail_on_restricted=False,
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
        collector.add_restricted_objects(link, owners)
        collector.add_dependency(link.remote_field.model, link.any_field.model)


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


# ------------------------------------------------------------------ scopes


class InvalidAnyScope(scopes.InvalidScope):
    """A scope mapping whose key is not a model the relation allows."""

    def __init__(self, field: BelongsToAnyField, scope: object, reason: str) -> None:
        self.model = None  # type: ignore[assignment]
        self.scope = scope
        ValueError.__init__(
            self,
            f"Invalid scope {scope!r} for {field.model.__name__}.{field.name}: {reason}. A "
            f"scope mapping's keys are models (or 'app.Model' labels) the relation may point at"
            f"{'' if field.allowed is None else ' (' + ', '.join(field.labels()) + ')'}.",
        )


def _scope_key(scope: Any) -> Hashable:
    """A hashable name for a scope argument: answers are cached under it."""
    if scope is None or scope is True:
        return "default"
    if scope is False:
        return scopes.BASE
    if isinstance(scope, models.QuerySet):
        return scopes.QuerySetKey(scope)
    if isinstance(scope, (list, tuple)):
        return ("managers", tuple(scope))
    if isinstance(scope, Mapping):
        return (
            "per model",
            tuple(sorted((m._meta.label, _scope_key(s)) for m, s in scope.items())),
        )
    return (
        ("managers", (scope,))
        if isinstance(scope, str) and type(scope) is str
        else ("bad", id(scope))
    )


class _Spec(NamedTuple):
    """A validated scope argument: the scope of each model, and its cache name."""

    scope: Any  # as given, or {model: scope} for a mapping
    name: Hashable

    def of(self, model: type[models.Model]) -> Any:
        if isinstance(self.scope, dict):
            return self.scope.get(model)
        return self.scope


def validate_scope(field: BelongsToAnyField, scope: AnyScope) -> _Spec:
    """Validate what can be validated without knowing the target (mapping keys,
    and each mapped scope against its model)."""
    if not isinstance(scope, Mapping):
        return _Spec(scope, _scope_key(scope))
    resolved: dict[type[models.Model], Any] = {}
    for key, value in scope.items():
        model = field.resolve_model(key)
        if model is None or not field.allows(model):
            what = "not a model" if model is None else f"{model._meta.label}, not allowed"
            raise InvalidAnyScope(field, scope, f"{key!r} is {what}")
        scopes.cache_key(model, value, field)  # InvalidScope for a bad scope of that model
        resolved[model] = value
    return _Spec(resolved, _scope_key(resolved))


# ------------------------------------------------------------------- the target


def _ids(field: BelongsToAnyField, instance: models.Model) -> tuple[Any, Any]:
    """The content type id and the object id the instance holds (deferred ones loaded)."""
    return getattr(instance, field.ct_attname), getattr(instance, field.fk_field)


def _model(
    field: BelongsToAnyField, instance: models.Model, ct_id: Any
) -> type[models.Model] | None:
    """The model of content type ``ct_id`` (cached by ContentType's manager), or
    None when it is gone or not allowed."""
    try:
        ct = field.get_content_type(id=ct_id, using=instance._state.db)
    except ContentType.DoesNotExist:
        return None
    model = ct.model_class()
    if model is None or not field.allows(model):
        return None
    return model


def _wanted(model: type[models.Model], value: Any) -> Any:
    """The object id as the target's primary key value (a text column's "5" -> 5)."""
    try:
        return model._meta.pk.to_python(value)
    except Exception:
        return MISS


def _entry(field: BelongsToAnyField, spec: _Spec, using: str | None) -> cache.Entry:
    return (field.scoped_cache_name, spec.name, using)


def _cached(instance: models.Model, name: cache.Entry, ct_id: Any, wanted: Any) -> Any:
    """The answer cached under ``name`` if it is for this content type and key, and
    was read in this context, else MISS.

    Entries hold ``(content type id, key, scope in context, answer)``: the two
    columns belong to the user, so a change of either is noticed here rather than
    by a descriptor; a scope whose manager may filter by context (a tenant) was
    named by the SQL it compiled to then (``scopes.in_context()``), and answers
    only where it compiles to the same SQL now.
    """
    held = cache.lookup_entry(instance, name)
    if type(held) is tuple and held[0] == ct_id and held[1] == wanted:
        read_in = held[2]
        if type(read_in) is scopes.ContextKey and read_in != scopes.in_context(
            read_in.queryset.model, read_in.scope
        ):
            return MISS
        return held[3]
    return MISS


def _entry_value(
    model: type[models.Model], key: Hashable, ct_id: Any, wanted: Any, obj: Any
) -> Any:
    """What the cache holds for an answer (see :func:`_cached`)."""
    return (ct_id, wanted, scopes.in_context(model, key), obj)


def _read_alias(
    model: type[models.Model], instance: models.Model, key: Hashable, using: str | None
) -> str:
    if using is not None:
        return using
    if isinstance(key, scopes.QuerySetKey) and _compat.explicit_alias(key.queryset):
        return key.alias
    return router.db_for_read(model, instance=instance)


def _django_answers(
    field: BelongsToAnyField,
    instance: models.Model,
    model: type[models.Model],
    key: Hashable,
    wanted: Any,
) -> Any:
    """The object ``instance.<name>`` holds (assignment, set_<name>(), Django's
    prefetch), when the scope is certain to select every row; else MISS."""
    obj = field.get_cached_value(instance, default=None)
    if (
        obj is None
        or obj._meta.concrete_model is not model._meta.concrete_model
        or obj.pk != wanted
        or not scopes.selects_every_row(model, key, _read_alias(model, instance, key, None))
    ):
        return MISS
    return obj


def get_target(
    field: BelongsToAnyField,
    instance: models.Model,
    /,
    *,
    scope: AnyScope = None,
    using: str | None = None,
    fetch: bool = True,
) -> Any:
    """The target in its scope, or None; at most one query once the content type
    is cached. With ``fetch=False``, MISS instead of a query."""
    spec = validate_scope(field, scope)
    ct_id, value = _ids(field, instance)
    if ct_id is None or value is None:
        return None
    name = _entry(field, spec, using)
    obj = _cached(instance, name, ct_id, value)  # a key as the target holds it: no lookup
    if obj is not MISS:
        return obj
    model = _model(field, instance, ct_id)
    if model is None:
        return None
    key = scopes.cache_key(model, spec.of(model), field)
    wanted = _wanted(model, value)
    if wanted is MISS or wanted is None:
        return None
    obj = _cached(instance, name, ct_id, wanted)
    if obj is MISS and using is None:
        obj = _django_answers(field, instance, model, key, wanted)
    if obj is MISS and fetch:
        load(field, [instance], spec, using)
        obj = _cached(instance, name, ct_id, wanted)
    return obj


def load(
    field: BelongsToAnyField, instances: Iterable[models.Model], spec: _Spec, using: str | None
) -> list[tuple[Any, Any, Any, Any]]:
    """Read and cache the targets in ``spec`` of the instances no cache answers
    for: one query per target model (and per database and batch of keys).

    Returns the cache entry (:func:`_cached`) of every instance that has one,
    cached before or read now.
    """
    name = _entry(field, spec, using)
    entries: dict[tuple[Any, Any], tuple[Any, Any, Any, Any]] = {}
    pending: dict[tuple[type[models.Model], Hashable], list[tuple[models.Model, Any, Any]]] = {}
    models_of: dict[tuple[str | None, Any], type[models.Model] | None] = {}  # per content type
    for instance in instances:
        ct_id, value = _ids(field, instance)
        if ct_id is None or value is None:
            continue
        db_ct = (instance._state.db, ct_id)
        if db_ct not in models_of:
            models_of[db_ct] = _model(field, instance, ct_id)
        model = models_of[db_ct]
        if model is None:
            continue
        wanted = _wanted(model, value)
        if wanted is MISS or wanted is None:
            continue
        key = scopes.cache_key(model, spec.of(model), field)
        obj = _cached(instance, name, ct_id, wanted)
        if obj is MISS and using is None:
            obj = _django_answers(field, instance, model, key, wanted)
            if obj is not MISS:
                cache.store_entry(instance, name, _entry_value(model, key, ct_id, wanted, obj))
        if obj is not MISS:
            entries[(ct_id, wanted)] = _entry_value(model, key, ct_id, wanted, obj)
            continue
        pending.setdefault((model, key), []).append((instance, ct_id, wanted))
    for (model, key), group in pending.items():
        alias = _read_alias(model, group[0][0], key, using)
        queryset = scopes.resolve(model, key).using(alias)
        keys = list(dict.fromkeys(wanted for _instance, _ct, wanted in group))
        found: dict[Any, models.Model] = {}
        if len(keys) == 1:
            obj = next(iter(queryset.filter(pk=keys[0])[:1]), None)
            if obj is not None:
                found[keys[0]] = obj
        else:
            size = accessors._batch_size(model, key, queryset, alias)
            for start in range(0, len(keys), size):
                found.update(
                    (obj.pk, obj) for obj in queryset.filter(pk__in=keys[start : start + size])
                )
        every_row = using is None and scopes.selects_every_row(model, key, alias)
        read_in = scopes.in_context(model, key)
        for instance, ct_id, wanted in group:
            obj = found.get(wanted)
            entry = (ct_id, wanted, read_in, obj)
            cache.store_entry(instance, name, entry)  # type: ignore[arg-type]
            entries[(ct_id, wanted)] = entry
            if every_row and obj is not None:
                field.set_cached_value(instance, obj)  # instance.<name> reuses it
    return list(entries.values())


async def aget_target(
    field: BelongsToAnyField,
    instance: models.Model,
    /,
    *,
    scope: AnyScope = None,
    using: str | None = None,
) -> Any:
    """Async :func:`get_target`: a cached answer without a thread hop."""
    obj = MISS
    if field.ct_attname in instance.__dict__ and field.fk_field in instance.__dict__:
        obj = get_target(field, instance, scope=scope, using=using, fetch=False)
    if obj is MISS:
        obj = await _get_target_in_thread(field, instance, scope=scope, using=using)
    return obj


def prefetch_querysets(
    field: BelongsToAnyField, instances: list[models.Model], load_: Any
) -> tuple[Any, ...]:
    """``get_prefetch_querysets()`` for a ``ScopedPrefetch``: Django's
    ``prefetch_one_level()`` stores each instance's ``(content type, key,
    answer)`` entry into the scope's cache entry."""
    spec = validate_scope(field, load_.scope)  # InvalidScope before any query
    for instance in instances:  # a bad scope for a model present: before any query too
        ct_id, value = _ids(field, instance)
        model = None if ct_id is None or value is None else _model(field, instance, ct_id)
        if model is not None:
            scopes.cache_key(model, spec.of(model), field)
    rows = load(field, instances, spec, load_.using)

    def identity(instance: models.Model) -> Any:
        ct_id, value = _ids(field, instance)
        model = None if ct_id is None or value is None else _model(field, instance, ct_id)
        return None if model is None else (ct_id, _wanted(model, value))

    return (
        rows,
        lambda row: (row[0], row[1]),
        identity,
        True,
        _entry(field, spec, load_.using),
        False,
    )


# ------------------------------------------------------------------- set


@functools.cache
def _content_types(using: str) -> Any:
    """``ContentType.objects.db_manager(using)``, made once per database."""
    return ContentType.objects.db_manager(using)


class _KeyOf(NamedTuple):
    """What ``accessors._coerce()`` reads of a field, for a key of ``related_model``."""

    name: str
    related_model: type[models.Model]
    target_field: Any


@functools.cache
def _key_of(name: str, model: type[models.Model]) -> _KeyOf:
    return _KeyOf(name, model, model._meta.pk)


def _label(field: BelongsToAnyField, instance: models.Model) -> str:
    return f"{type(instance).__name__}.{field.name}"


def _check_model(
    field: BelongsToAnyField, instance: models.Model, model: Any, what: str
) -> type[models.Model]:
    if not (isinstance(model, type) and issubclass(model, models.Model)) or model._meta.abstract:
        raise TypeError(
            f"{_label(field, instance)}: {what} {model!r} is not a model class. {field.expected()}"
        )
    if not field.allows(model):
        raise TypeError(
            f"{_label(field, instance)}: cannot point at a {model.__name__}. {field.expected()}"
        )
    return model


class _Prepared(NamedTuple):
    """What ``set_<name>()`` assigns, validated."""

    ct: Any  # the content type, or None
    key: Any  # the object id, or None
    obj: models.Model | None  # the instance given, if one was
    model: type[models.Model] | None  # the model given with a key, whose row is checked


def _prepare(field: BelongsToAnyField, instance: models.Model, args: tuple[Any, ...]) -> _Prepared:
    """Validate ``set_<name>()``'s arguments; raises before anything changes."""
    if len(args) == 2:
        model = _check_model(field, instance, args[0], "the model")
        value = args[1]
        if value is None or isinstance(value, models.Model):
            raise TypeError(
                f"{_label(field, instance)}: set_{field.name}(Model, key) takes a key, not "
                f"{value!r}. Pass the instance alone: set_{field.name}(obj)."
            )
        key = accessors._coerce(_key_of(field.name, model), instance, value)  # type: ignore[arg-type]
        ct = field.get_content_type(model=model, using=instance._state.db)
        return _Prepared(ct, key, None, model)
    if len(args) != 1:
        raise TypeError(
            f"{_label(field, instance)}: set_{field.name}() takes an instance, None, or a model "
            f"and a key ({len(args)} arguments given)."
        )
    (value,) = args
    if value is None:
        if not (field.ct.null and field.fk.null):
            raise ValueError(
                f"{_label(field, instance)}: cannot set None: {field.ct_field} and {field.fk_field} "
                f"are not both nullable (null=True)."
            )
        return _Prepared(None, None, None, None)
    if not isinstance(value, models.Model) or isinstance(value, type):
        raise TypeError(f"{_label(field, instance)}: cannot set {value!r}. {field.expected()}")
    _check_model(field, instance, type(value), "the model")
    if value._state.adding or value.pk is None:
        raise ValueError(
            f"{_label(field, instance)}: cannot set an unsaved {type(value).__name__}; save it first."
        )
    return _Prepared(field.get_content_type(obj=value), value.pk, value, None)


def _relate(field: BelongsToAnyField, instance: models.Model, obj: models.Model) -> None:
    """Ask the router's ``allow_relation()`` about pointing at ``obj``, after giving
    an unsaved owner the database the router picks for writing it, as Django's
    descriptors do for ``owner.<foreign key> = obj``. The caller's snapshot puts
    the owner's database back if anything fails."""
    if instance._state.db is None:
        instance._state.db = router.db_for_write(type(instance), instance=obj)
    if not router.allow_relation(obj, instance):
        raise ValueError(
            f"{_label(field, instance)}: cannot point at {obj!r} on {obj._state.db!r} from "
            f"{type(instance).__name__} on {instance._state.db!r}: the database router does "
            f"not allow this relation."
        )


def _point(field: BelongsToAnyField, instance: models.Model, ct: Any, key: Any, obj: Any) -> None:
    """Assign the two columns and Django's cache (``obj``, or nothing for a bare key)."""
    setattr(instance, field.ct_field, ct)
    setattr(instance, field.fk_field, key)
    if obj is not None or ct is None:
        field.set_cached_value(instance, obj)
    elif field.is_cached(instance):
        field.delete_cached_value(instance)
    cache.drop(field, instance)  # type: ignore[arg-type]


def _save(field: BelongsToAnyField, instance: models.Model, save_kwargs: dict[str, Any]) -> None:
    """Save the two columns (and ``auto_now`` ones); a new owner is inserted whole."""
    if not (
        instance._state.adding or "update_fields" in save_kwargs or save_kwargs.get("force_insert")
    ):
        save_kwargs["update_fields"] = accessors._update_fields(
            type(instance), field.ct_field, field.fk_field
        )
    instance.save(**save_kwargs)


def _check_row(
    field: BelongsToAnyField, instance: models.Model, model: type[models.Model], key: Any
) -> None:
    """Refuse a key no row of ``model`` has (in any scope: the base manager), in the
    transaction of the write. Where the database can, the row is locked against
    deletion until that transaction ends (``FOR NO KEY UPDATE``), as a foreign
    key's constraint check would: nobody deletes it between the check and the write."""
    using = router.db_for_write(model, instance=instance)
    rows = model._base_manager.db_manager(using).filter(pk=key)
    features = connections[using].features
    if features.has_select_for_update:
        rows = rows.select_for_update(no_key=features.has_select_for_no_key_update)
    if not rows.exists():
        raise ValueError(
            f"{_label(field, instance)}: there is no {model.__name__} with "
            f"{model._meta.pk.name} {key!r} to point at. Pass the key of an existing row, an "
            f"instance, or create the row with create_{field.name}()."
        )


@contextlib.contextmanager
def _transaction(*aliases: str) -> Iterator[set[str]]:
    """One transaction (``transaction.atomic()``) on each database of ``aliases``,
    yielding the set of those whose transaction has committed. An error can still
    come after a commit (a failing ``on_commit()`` callback): the writes stay, and
    the instance must stay with them."""
    committed: set[str] = set()
    with contextlib.ExitStack() as stack:
        for alias in dict.fromkeys(aliases):
            stack.enter_context(transaction.atomic(using=alias))
            # First in line: it runs right after the commit, before any callback the
            # save registers, which may raise.
            transaction.on_commit(functools.partial(committed.add, alias), using=alias)
        yield committed


def set_target(
    field: BelongsToAnyField,
    instance: models.Model,
    /,
    *args: Any,
    save: bool = True,
    **save_kwargs: Any,
) -> None:
    """Point the relation at an instance, at ``(Model, key)`` or at None; save only
    the two columns (and ``auto_now`` ones), in one transaction with the check
    that ``(Model, key)`` has a row. If the database keeps nothing, the instance
    is put back as it was."""
    ct, key, obj, model = _prepare(field, instance, args)
    states = [accessors._state_of(instance)]
    committed: set[str] = set()
    owner_db = None
    try:
        if obj is not None:
            _relate(field, instance, obj)
        _point(field, instance, ct, key, obj)
        if save:
            owner_db = save_kwargs.get("using") or router.db_for_write(
                type(instance), instance=instance
            )
            with _transaction(owner_db) as committed:
                if model is not None:
                    _check_row(field, instance, model, key)
                _save(field, instance, save_kwargs)
    except BaseException:
        if owner_db not in committed:
            accessors._restore(states)
        raise


async def aset_target(
    field: BelongsToAnyField,
    instance: models.Model,
    /,
    *args: Any,
    save: bool = True,
    **save_kwargs: Any,
) -> None:
    """Async :func:`set_target`; with ``save=False`` no thread is used."""
    if not save:
        set_target(field, instance, *args, save=False)
        return
    await _set_target_in_thread(field, instance, *args, save=save, **save_kwargs)


def create_target(
    field: BelongsToAnyField,
    instance: models.Model,
    model: Any,
    values: Mapping[str, Any] | None = None,
    /,
    *,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Create a ``model`` from ``values`` and ``fields``, point at it and save the
    owner, in one transaction on each database involved."""
    model = _check_model(field, instance, model, "the model")
    if values is None:
        data = dict(fields)
    elif isinstance(values, Mapping):
        data = {**values, **fields}
    else:
        raise TypeError(
            f"{_label(field, instance)}: create_{field.name}() values must be a mapping of "
            f"{model.__name__} field names to values, not {values!r}."
        )
    target_db = router.db_for_write(model, instance=instance)
    # The owner, and the objects given as values: building and saving the new
    # object may write to them in memory (a one-to-one's reverse cache, a
    # database for an unsaved one).
    states = [accessors._state_of(instance)]
    states += [accessors._state_of(v) for v in data.values() if isinstance(v, models.Model)]
    committed: set[str] = set()
    owner_db = None
    try:
        obj = model(**data)  # an unknown field name raises TypeError here
        obj._state.db = target_db
        _relate(field, instance, obj)
        owner_db = router.db_for_write(type(instance), instance=instance) if save else target_db
        with _transaction(target_db, owner_db) as committed:
            obj.save(force_insert=True, using=target_db)
            _point(field, instance, field.get_content_type(obj=obj), obj.pk, obj)
            if save:
                _save(field, instance, {})
    except BaseException:
        if owner_db not in committed:
            accessors._restore(states)
        raise
    return obj


async def acreate_target(
    field: BelongsToAnyField,
    instance: models.Model,
    model: Any,
    values: Mapping[str, Any] | None = None,
    /,
    *,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Async :func:`create_target`, in one thread hop (one transaction)."""
    return await _create_target_in_thread(field, instance, model, values, save=save, **fields)


def is_target(field: BelongsToAnyField, instance: models.Model, other: Any) -> bool:
    """Whether the relation points at ``other`` (an instance or None), without a query
    once the content type is cached."""
    ct_id, value = _ids(field, instance)
    if other is None:
        return ct_id is None or value is None
    if not isinstance(other, models.Model) or isinstance(other, type):
        raise TypeError(
            f"{_label(field, instance)}: cannot compare with {other!r}. {field.expected()}"
        )
    if other._state.adding or other.pk is None or ct_id is None or value is None:
        return False
    if field.get_content_type(obj=other).pk != ct_id:
        return False
    return _wanted(type(other), value) == other.pk


_get_target_in_thread = sync_to_async(get_target)
_set_target_in_thread = sync_to_async(set_target)
_create_target_in_thread = sync_to_async(create_target)


# ------------------------------------------------------- injected methods


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("get_", "", False, types.GetAnyAssociation),
    MethodSpec("set_", "", True, types.SetAnyAssociation),
    MethodSpec("create_", "", True, types.CreateAnyAssociation),
    MethodSpec("aget_", "", False, types.AsyncGetAnyAssociation),
    MethodSpec("aset_", "", True, types.AsyncSetAnyAssociation),
    MethodSpec("acreate_", "", True, types.AsyncCreateAnyAssociation),
    MethodSpec("is_", "", False, types.IsAnyAssociation),
)


def _make_methods(field: BelongsToAnyField) -> tuple[Callable[..., Any], ...]:
    """The methods of ``field`` in the order of :data:`METHODS`, real functions
    (``alters_data`` is set on the writers)."""

    def get(self: models.Model, *, scope: AnyScope = None, using: str | None = None) -> Any:
        """Return the target in ``scope``, or None.

        See belongsto_ext.types.GetAnyAssociation for the parameters.
        """
        return get_target(field, self, scope=scope, using=using)

    def set_(self: models.Model, *args: Any, save: bool = True, **save_kwargs: Any) -> None:
        """Point the relation at an instance, at (Model, key), or at None, and save.

        See belongsto_ext.types.SetAnyAssociation for the parameters.
        """
        set_target(field, self, *args, save=save, **save_kwargs)

    def create(
        self: models.Model,
        model: Any,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> Any:
        """Create an instance of ``model``, point at it and save, in one transaction.

        See belongsto_ext.types.CreateAnyAssociation for the parameters.
        """
        return create_target(field, self, model, values, save=save, **fields)

    async def aget(self: models.Model, *, scope: AnyScope = None, using: str | None = None) -> Any:
        """Async get_<name>(): see belongsto_ext.types.AsyncGetAnyAssociation."""
        return await aget_target(field, self, scope=scope, using=using)

    async def aset(self: models.Model, *args: Any, save: bool = True, **save_kwargs: Any) -> None:
        """Async set_<name>(): see belongsto_ext.types.AsyncSetAnyAssociation."""
        await aset_target(field, self, *args, save=save, **save_kwargs)

    async def acreate(
        self: models.Model,
        model: Any,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> Any:
        """Async create_<name>(): see belongsto_ext.types.AsyncCreateAnyAssociation."""
        return await acreate_target(field, self, model, values, save=save, **fields)

    def is_(self: models.Model, other: Any) -> bool:
        """Whether the relation points at ``other`` (an instance or None), no query.

        See belongsto_ext.types.IsAnyAssociation for the parameters.
        """
        return is_target(field, self, other)

    return get, set_, create, aget, aset, acreate, is_


register_methods(_make_methods)


# ------------------------------------------------------------ validation


class AllowedModels:
    """The validator of the content type column of a BelongsToAnyField with
    ``models=``: the value (a content type or its id) must be one of those models'."""

    def __init__(self, field: BelongsToAnyField) -> None:
        self.field = field

    def __call__(self, value: Any) -> None:
        ct_id = value.pk if isinstance(value, models.Model) else value
        if ct_id is None:
            return
        try:
            ct = ContentType.objects.get_for_id(ct_id)
        except (ContentType.DoesNotExist, ValueError, TypeError):
            return  # the foreign key's own validation reports a missing content type
        model = ct.model_class()
        if model is not None and self.field.allows(model):
            return
        raise ValidationError(
            "%(field)s cannot point at %(value)s: it allows %(allowed)s only.",
            # Not "invalid": the foreign key would put its own message in its place.
            code="model_not_allowed",
            params={
                "field": f"{self.field.model.__name__}.{self.field.name}",
                "value": model._meta.label if model is not None else f"{ct.app_label}.{ct.model}",
                "allowed": ", ".join(self.field.labels()),
            },
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllowedModels) and other.field is self.field

    def __hash__(self) -> int:
        return hash((AllowedModels, id(self.field)))


# ------------------------------------------------------------------ the field


class BelongsToAnyField(GenericForeignKey):
    """A ``GenericForeignKey`` whose model gains ``get_<name>``, ``set_<name>``,
    ``create_<name>``, ``is_<name>`` and the async twins, with ``models=`` (the
    models it may point at) and ``on_delete=`` (what deleting a target does to
    its owners)."""

    def __init__(
        self,
        ct_field: str = "content_type",
        fk_field: str = "object_id",
        for_concrete_model: bool = True,
        *,
        models: Iterable[type[Model] | str] | None = None,
        on_delete: Callable[..., Any] = models.DO_NOTHING,
    ) -> None:
        super().__init__(ct_field, fk_field, for_concrete_model)
        self.allowed: tuple[type[Model] | str, ...] | None = (
            None if models is None else ((models,) if isinstance(models, str) else tuple(models))
        )
        self.on_delete = on_delete
        self.scopes = None  # what scopes.cache_key() reads: every manager name is accepted
        self._resolved: tuple[type[Model], ...] | None = None
        self.link_model: type[Model] | None = None  # see link_model()

    @property
    def scoped_cache_name(self) -> str:
        return f"{self.cache_name}:scoped"

    @property
    def ct_attname(self) -> str:
        return self.ct.attname

    @property
    def ct(self) -> Any:
        return self.model._meta.get_field(self.ct_field)

    @property
    def fk(self) -> Any:
        return self.model._meta.get_field(self.fk_field)

    def get_content_type(
        self,
        obj: models.Model | None = None,
        id: Any = None,
        using: str | None = None,
        model: type[models.Model] | None = None,
    ) -> Any:
        """``GenericForeignKey.get_content_type()``, with ContentType's manager for
        each database made once (GenericForeignKey copies it with ``db_manager()``
        on every call: on every get, set and prefetch here)."""
        if obj is not None:
            using, model = obj._state.db, type(obj)
        manager = ContentType.objects if using is None else _content_types(using)
        if obj is None and id is not None:
            return manager.get_for_id(id)
        if model is not None:
            return manager.get_for_model(model, for_concrete_model=self.for_concrete_model)
        return super().get_content_type(obj=obj, id=id, using=using, model=model)

    def resolve_model(self, ref: Any) -> type[models.Model] | None:
        """A model class, or the model an ``"app.Model"`` label names; None if neither."""
        if isinstance(ref, type) and issubclass(ref, models.Model):
            return ref
        if isinstance(ref, str):
            try:
                return self._apps().get_model(ref)
            except (LookupError, ValueError):
                return None
        return None

    def _apps(self) -> Any:
        model = getattr(self, "model", None)
        return model._meta.apps if model is not None else global_apps

    def target_models(self) -> tuple[type[models.Model], ...] | None:
        """The allowed models, resolved (None: any model); unresolvable names left out."""
        if self.allowed is None:
            return None
        if self._resolved is None or len(self._resolved) != len(self.allowed):
            found = tuple(m for m in map(self.resolve_model, self.allowed) if m is not None)
            if len(found) < len(self.allowed):
                return found  # not cached: a model may still be loading
            self._resolved = found
        return self._resolved

    def allows(self, model: type[models.Model]) -> bool:
        allowed = self.target_models()
        if allowed is None:
            return True
        if self.for_concrete_model:
            model = model._meta.concrete_model  # type: ignore[assignment]
            return any(m._meta.concrete_model is model for m in allowed)
        return model in allowed

    def labels(self) -> list[str]:
        return [a if isinstance(a, str) else a._meta.label for a in self.allowed or ()]

    def expected(self) -> str:
        which = "any model" if self.allowed is None else ", ".join(self.labels())
        return f"Pass a saved instance of {which}, a model and a key, or None."

    # -------------------------------------------------------- class setup

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = True, **kwargs: Any
    ) -> None:
        # Field's signature; GenericForeignKey's field is always private (it passes
        # private_only=True itself).
        super().contribute_to_class(cls, name, **kwargs)
        if _DescriptorBase is not object:
            setattr(cls, name, _AnyDescriptor(self))
        install_methods(cls, name, METHODS, _make_methods(self))
        if cls._meta.abstract or getattr(self, "mti_inherited", False) or not self.allowed:
            return  # a multi-table child: the parent's field validates and links
        _compat.lazy_related_operation(self._validate_models, cls)
        if HANDLERS.get(self.on_delete, MISS) not in (None, MISS):
            _compat.lazy_related_operation(self._install_links, cls, *self.allowed)

    def _validate_models(self, owner: type[models.Model]) -> None:
        """Make the content type column refuse a model ``models=`` does not allow, in
        ``full_clean()`` (so ModelForms and the admin) and in a DRF
        ``ModelSerializer``, which both run the model field's validators. The
        validator joins the field's ``validators`` list, not its ``validators=``
        option: migrations do not see it."""
        try:
            ct: Any = owner._meta.get_field(self.ct_field)
        except FieldDoesNotExist:
            return  # contenttypes.E002, from GenericForeignKey's checks
        ct.validators.append(AllowedModels(self))

    def _install_links(self, owner: type[models.Model], *targets: type[models.Model]) -> None:
        """The link model, once the owner and every allowed model are loaded."""
        self.link_model = link_model(self, targets)

    def links(self) -> list[TargetLink]:
        """The hidden relations ``on_delete`` goes through (none without one)."""
        if self.link_model is None:
            return []
        return [f for f in self.link_model._meta.private_fields if isinstance(f, TargetLink)]

    def get_prefetch_querysets(self, instances: Any, querysets: Any = None) -> Any:
        """Django's prefetch of ``<name>`` (5.2); a ``ScopedPrefetch`` loads its scope instead."""
        if querysets and isinstance(querysets[0], accessors.ScopedLoad):
            return prefetch_querysets(self, instances, querysets[0])
        return super().get_prefetch_querysets(instances, querysets)  # type: ignore[misc, unused-ignore]

    # -------------------------------------------------------------- checks

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = [*super().check(**kwargs)]
        if errors:
            return errors  # a missing or wrong column: nothing else can be checked
        return [
            *self._check_models(),
            *self._check_on_delete(),
            *self._check_object_id(),
            *self._check_method_names(),
        ]

    def _error(self, msg: str, hint: str, id: str) -> checks.Error:
        return checks.Error(msg, hint=hint, obj=self, id=f"belongsto_ext.{id}")

    def _check_models(self) -> list[checks.CheckMessage]:
        if self.allowed is None:
            return []
        errors: list[checks.CheckMessage] = []
        if not self.allowed:
            errors.append(
                self._error(
                    "models= is empty.",
                    "List the models, or leave models= out for any model.",
                    "E010",
                )
            )
        for ref in self.allowed:
            model = self.resolve_model(ref)
            if model is None or model._meta.abstract:
                why = "an abstract model" if model is not None else "not an installed model"
                errors.append(
                    self._error(
                        f"models= names {ref!r}, {why}.",
                        "Name concrete models, as classes or 'app_label.ModelName' strings.",
                        "E010",
                    )
                )
        return errors

    def _check_on_delete(self) -> list[checks.CheckMessage]:
        handler = HANDLERS.get(self.on_delete, MISS)
        if handler is MISS:
            return [
                self._error(
                    f"on_delete={getattr(self.on_delete, '__name__', self.on_delete)!r} is not supported.",
                    "Use CASCADE, SET_NULL, PROTECT, RESTRICT or DO_NOTHING.",
                    "E011",
                )
            ]
        if handler is None:
            return []
        if self.allowed is None:
            return [
                self._error(
                    f"on_delete={self.on_delete.__name__} needs models=.",
                    "List the models the relation may point at (models=[...]); without it only "
                    "DO_NOTHING is possible.",
                    "E011",
                )
            ]
        if self.on_delete is models.SET_NULL and not (self.ct.null and self.fk.null):
            return [
                self._error(
                    f"on_delete=SET_NULL, but {self.ct_field} and {self.fk_field} are not both null=True.",
                    f"Set null=True on {self.ct_field} and {self.fk_field}, or use another on_delete.",
                    "E012",
                )
            ]
        return []

    def _check_object_id(self) -> list[checks.CheckMessage]:
        """The object id column must hold every allowed model's primary key: an
        Error when it cannot hold that kind of key at all, a Warning when it is a
        narrower integer (Django's own example, PositiveIntegerField under
        BigAutoField keys, works until the keys outgrow it)."""
        fk = self.fk
        errors: list[checks.CheckMessage] = []
        for model in self.target_models() or ():
            pk = model._meta.pk
            fit = _holds(fk, pk)
            if fit == "yes":
                continue
            msg = (
                f"{self.fk_field} ({fk.get_internal_type()}) cannot hold every primary key "
                f"of {model._meta.label} ({_key_kind(pk)})."
            )
            if fit == "narrower":
                errors.append(
                    checks.Warning(
                        msg,
                        hint=f"Use a {_key_kind(pk)}-wide integer field, e.g. PositiveBigIntegerField.",
                        obj=self,
                        id="belongsto_ext.W003",
                    )
                )
            else:
                errors.append(
                    self._error(
                        msg,
                        "Use an integer field for integer keys, or a CharField/TextField for any key.",
                        "E013",
                    )
                )
        return errors

    # E001-E004, as for a BelongsTo field, over this field's methods.
    _check_method_name = BelongsToMixin._check_method_name

    def _check_method_names(self) -> list[checks.CheckMessage]:
        return BelongsToMixin._check_method_names(self, METHODS)  # type: ignore[arg-type]


_INTEGERS = {
    "AutoField": 32,
    "SmallAutoField": 16,
    "BigAutoField": 64,
    "IntegerField": 32,
    "SmallIntegerField": 16,
    "BigIntegerField": 64,
    "PositiveIntegerField": 31,
    "PositiveSmallIntegerField": 15,
    "PositiveBigIntegerField": 63,
}


def _key_kind(pk: Any) -> str:
    """The internal type of a primary key, through a multi-table child's parent link."""
    while pk.get_internal_type() in ("ForeignKey", "OneToOneField"):
        pk = pk.target_field
    return str(pk.get_internal_type())


def _holds(column: Any, pk: Any) -> str:
    """Whether ``column`` can store every value of primary key ``pk``: "yes",
    "narrower" (an integer column narrower than the key) or "no"."""
    kind, pk_kind = column.get_internal_type(), _key_kind(pk)
    if kind == "TextField":
        return "yes"
    if kind == "CharField":
        needed = 36 if pk_kind == "UUIDField" else 20 if pk_kind in _INTEGERS else 0
        if pk_kind == "CharField":
            while pk.get_internal_type() in ("ForeignKey", "OneToOneField"):
                pk = pk.target_field
            needed = pk.max_length or 0
        return "yes" if column.max_length is None or column.max_length >= needed else "no"
    if kind in _INTEGERS and pk_kind in _INTEGERS:
        # Auto keys are positive: a positive column one bit narrower holds them.
        width = _INTEGERS[pk_kind] - (1 if pk_kind.endswith("AutoField") else 0)
        return "yes" if _INTEGERS[kind] >= width else "narrower"
    return "yes" if kind == pk_kind else "no"


_DescriptorBase: Any = _compat.gfk_descriptor_class() or object


class _AnyDescriptor(_DescriptorBase):
    """Django 6.1's ``GenericForeignKeyDescriptor``, whose prefetch a ``ScopedPrefetch`` replaces."""

    field: Any  # the BelongsToAnyField

    def get_prefetch_querysets(self, instances: list[models.Model], querysets: Any = None) -> Any:
        if querysets and isinstance(querysets[0], accessors.ScopedLoad):
            return prefetch_querysets(self.field, instances, querysets[0])
        return super().get_prefetch_querysets(instances, querysets)  # type: ignore[misc, unused-ignore]
