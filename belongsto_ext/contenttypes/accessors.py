"""What ``BelongsToAnyField``'s owners point at, and what its ``set_<name>()`` and
``create_<name>()`` arguments mean: the hooks the shared code in
``belongsto_ext.accessors`` and ``belongsto_ext.batch`` asks of the field.

The owner's two columns (a content type and an object id) belong to the user,
who may assign them directly: answers are checked against them
(``owner_key()``), not dropped by a descriptor.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router

from .. import _compat, answers, keys, policy

# The field (contenttypes/fields.py, above this module): what is read of it is
# named where it is read.
BelongsToAnyField = Any


def _label(field: BelongsToAnyField, instance: models.Model) -> str:
    return f"{type(instance).__name__}.{field.name}"


# ---------------------------------------------------------------- reading


def owner_key(field: BelongsToAnyField, instance: models.Model, strict: bool = False) -> Any:
    """``(content type id, object id)`` the instance holds, None if either is null;
    deferred columns are loaded (refused with ``strict``)."""
    data = instance.__dict__
    if strict and not (field.ct_attname in data and field.fk_field in data):
        policy.lazy_load(field, instance)
    ct_id, value = getattr(instance, field.ct_attname), getattr(instance, field.fk_field)
    if ct_id is None or value is None:
        return None
    return (ct_id, value)


def target_of(field: BelongsToAnyField, instance: models.Model, key: Any) -> tuple[Any, Any]:
    """The model of the content type (cached by ContentType's manager) and the
    object id as its primary key ("5" -> 5); ``(None, None)`` when the content
    type is gone, its model is not allowed, or the id does not convert."""
    ct_id, value = key
    try:
        ct = field.get_content_type(id=ct_id, using=_compat.db(instance))
    except ContentType.DoesNotExist:
        return None, None
    model = ct.model_class()
    if model is None or not field.allows(model):
        return None, None
    try:
        wanted = model._meta.pk.to_python(value)
    except Exception:
        return None, None
    return (model, wanted) if wanted is not None else (None, None)


@functools.cache
def content_types(using: str) -> Any:
    """``ContentType.objects.db_manager(using)``, made once per database."""
    return ContentType.objects.db_manager(using)


# ---------------------------------------------------------------- writing


def check_model(
    field: BelongsToAnyField, instance: models.Model, model: Any, what: str = "the model"
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


class Prepared(NamedTuple):
    """What ``set_<name>()`` assigns, validated."""

    ct: Any  # the content type, or None
    key: Any  # the object id, or None
    obj: models.Model | None  # the instance given, if one was
    model: type[models.Model] | None  # the model given with a key, whose row is checked


def prepare(
    field: BelongsToAnyField, instance: models.Model, args: tuple[Any, ...], validate: bool
) -> Prepared:
    """Validate ``set_<name>()``'s arguments; raises before anything changes."""
    if validate:
        raise TypeError(
            f"{_label(field, instance)}: set_{field.name}() takes no validate=: a key given "
            f"with its model is checked against the row in the write's transaction."
        )
    if len(args) == 2:
        model = check_model(field, instance, args[0])
        value = args[1]
        if value is None or isinstance(value, models.Model):
            raise TypeError(
                f"{_label(field, instance)}: set_{field.name}(Model, key) takes a key, not "
                f"{value!r}. Pass the instance alone: set_{field.name}(obj)."
            )
        key = keys.coerce(_label(field, instance), model, model._meta.pk, value)
        ct = field.get_content_type(model=model, using=_compat.db(instance))
        return Prepared(ct, key, None, model)
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
        return Prepared(None, None, None, None)
    if not isinstance(value, models.Model) or isinstance(value, type):
        raise TypeError(f"{_label(field, instance)}: cannot set {value!r}. {field.expected()}")
    check_model(field, instance, type(value))
    if _compat.adding(value) or value.pk is None:
        raise ValueError(
            f"{_label(field, instance)}: cannot set an unsaved {type(value).__name__}; save it first."
        )
    return Prepared(field.get_content_type(obj=value), value.pk, value, None)


def point(field: BelongsToAnyField, instance: models.Model, prepared: Prepared) -> None:
    """Assign the two columns and Django's cache (the instance given, or nothing
    for a bare key), after asking the router's ``allow_relation()`` about an
    instance, as Django's descriptors do for ``owner.<foreign key> = obj``
    (an unsaved owner first gets the database the router picks for writing it)."""
    ct, key, obj, _model = prepared
    if obj is not None:
        if _compat.db(instance) is None:
            _compat.set_db(instance, router.db_for_write(type(instance), instance=obj))
        if not router.allow_relation(obj, instance):
            raise ValueError(
                f"{_label(field, instance)}: cannot point at {obj!r} on {_compat.db(obj)!r} "
                f"from {type(instance).__name__} on {_compat.db(instance)!r}: the database "
                f"router does not allow this relation."
            )
    setattr(instance, field.ct_field, ct)
    setattr(instance, field.fk_field, key)
    if obj is not None or ct is None:
        field.set_cached_value(instance, obj)
    elif field.is_cached(instance):
        field.delete_cached_value(instance)
    answers.drop(field, instance)


def lock_target(field: BelongsToAnyField, instance: models.Model, prepared: Prepared) -> None:
    """For a model and a key: refuse a key no row has (below)."""
    if prepared.model is not None:
        _check_row(field, instance, prepared.model, prepared.key)


def _check_row(
    field: BelongsToAnyField, instance: models.Model, model: type[models.Model], key: Any
) -> None:
    """Refuse a key no row of ``model`` has (in any scope: the base manager), in the
    transaction of the write. Where the database can, the row is locked against
    deletion until that transaction ends (``FOR NO KEY UPDATE``), as a foreign
    key's constraint check would: nobody deletes it between the check and the write."""
    using = router.db_for_write(model, instance=instance)
    rows = model._base_manager.using(using).filter(pk=key)
    locks, no_key = _locking(using)
    if locks:
        rows = rows.select_for_update(no_key=no_key)
    if not rows.exists():
        raise ValueError(
            f"{_label(field, instance)}: there is no {model.__name__} with "
            f"{model._meta.pk.name} {key!r} to point at. Pass the key of an existing row, an "
            f"instance, or create the row with create_{field.name}()."
        )


@functools.cache
def _locking(alias: str) -> tuple[bool, bool]:
    """Whether the database ``alias`` locks rows (``SELECT ... FOR UPDATE``), and
    with ``FOR NO KEY UPDATE``: features of its backend, asked once."""
    features = connections[alias].features
    return bool(features.has_select_for_update), bool(features.has_select_for_no_key_update)


def compared(field: BelongsToAnyField, instance: models.Model, other: Any) -> tuple[Any, Any]:
    """``other`` (an instance; not None) as its model, as the content type column
    stores it, and its key (None when unsaved)."""
    if not isinstance(other, models.Model) or isinstance(other, type):
        raise TypeError(
            f"{_label(field, instance)}: cannot compare with {other!r}. {field.expected()}"
        )
    model = type(other)._meta.concrete_model if field.for_concrete_model else type(other)
    return model, None if _compat.adding(other) else other.pk
