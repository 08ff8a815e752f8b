"""What a caller passes as a ``BelongsToField``'s target: an instance, a key
value or None, checked and converted before anything changes.

A key value is converted with the target field, refusing any inexact
conversion ("5" -> 5 is fine, 1.5 -> 1 is not), and checked with its
validators; the errors name the model, the field and the value, and say what
is accepted instead.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, router

from . import _compat, scopes
from .relation import KeyRelation as Field
from .types import Scope

# Python types a key value may arrive as; anything else (bytes, containers,
# arbitrary objects) is refused unless it is already the target field's own type.
_KEY_TYPES = (
    str,
    int,
    float,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.time,
    datetime.timedelta,
)


def _target(field: Field) -> type[models.Model]:
    return field.related_model  # type: ignore[no-any-return, unused-ignore]


def _label(field: Field, instance: models.Model) -> str:
    return f"{type(instance).__name__}.{field.name}"


class Prepared(NamedTuple):
    """What ``set_<name>()`` assigns: ``<name>`` an instance or None, or
    ``<name>_id`` a converted key."""

    attr: str
    value: Any


def prepare(
    field: Field, instance: models.Model, args: tuple[Any, ...], validate: bool
) -> Prepared:
    """Check ``set_<name>()``'s argument; with ``validate``, also that the row
    exists in ``validate_scope`` (one query)."""
    if len(args) != 1:
        raise TypeError(
            f"{_label(field, instance)}: set_{field.name}() takes one value: an instance, "
            f"a key or None ({len(args)} given)."
        )
    (value,) = args
    attr = field.attname
    if type(value) is int and field.int_key:  # the common case: no conversion
        try:
            _run_validators(field.target_field, value)
        except ValidationError:  # refused below, with the field and the value named
            attr, value = _prepare(field, instance, value)
    else:
        attr, value = _prepare(field, instance, value)
    if validate and value is not None:
        key = getattr(value, field.target_field.attname) if attr == field.name else value
        check_in_scope(field, instance, key, field.validate_scope)
    return Prepared(attr, value)


def compared(field: Field, instance: models.Model, other: Any) -> tuple[type[models.Model], Any]:
    """``other`` (an instance or a key value) as ``(target model, key)`` for
    ``is_<name>()``: a key converted as ``set_<name>()`` converts it, with the
    same errors; an instance of another model raises TypeError; an unsaved one
    has no key (None)."""
    model = _target(field)
    if isinstance(other, models.Model):
        if not isinstance(other, model._meta.concrete_model):  # type: ignore[arg-type]
            raise TypeError(
                f"{_label(field, instance)}: cannot compare with {other!r}, a "
                f"{type(other).__name__}. Pass a {model.__name__}, its key, or None."
            )
        key = None if _compat.adding(other) else getattr(other, field.target_field.attname)
        return model, key
    return model, _coerce(field, instance, other)


def _coerce(field: Field, instance: models.Model, value: Any) -> Any:
    return coerce(_label(field, instance), _target(field), field.target_field, value)


def _prepare(field: Field, instance: models.Model, value: Any) -> tuple[str, Any]:
    """Validate ``value``; return the attribute to assign and what to assign to it.

    Raises before anything changes: ``TypeError`` for a value of the wrong kind,
    ``ValueError`` for one of the right kind that cannot be used.
    """
    if value is None:
        if not field.null:
            raise ValueError(
                f"{_label(field, instance)}: cannot set None, the field is not nullable "
                f"(null=False). Pass a saved {_target(field).__name__} or its key."
            )
        return field.name, None
    if not isinstance(value, models.Model):
        return field.attname, _coerce(field, instance, value)
    model = _target(field)
    if not isinstance(value, model._meta.concrete_model):  # type: ignore[arg-type]
        raise TypeError(
            f"{_label(field, instance)}: cannot set {value!r}, a "
            f"{type(value).__name__}. Pass a saved {model.__name__}, its key, or None."
        )
    if _compat.adding(value):
        raise ValueError(
            f"{_label(field, instance)}: cannot set the unsaved {model.__name__} "
            f"{value!r}. Save it first, or use create_{field.name}()."
        )
    if getattr(value, field.target_field.attname) is None:
        raise ValueError(
            f"{_label(field, instance)}: cannot set {value!r}: its "
            f"{field.target_field.name} is None, so there is no key to point at."
        )
    return field.name, value


def coerce(label: str, model: type[models.Model], target: Any, value: Any) -> Any:
    """Convert a key value of ``model`` with its field ``target``, refusing any
    inexact conversion, and check it with the field's validators; errors start
    with ``label`` (``Owner.field``)."""
    if isinstance(value, bool) or not isinstance(value, _KEY_TYPES):
        try:
            native = type(target.to_python(value)) is type(value)
        except Exception:
            native = False
        if isinstance(value, bool) or not native:
            raise TypeError(f"{label}: cannot set {value!r}. {_expected(model, target)}")
    try:
        coerced = target.to_python(value)
        if coerced is None:
            raise ValueError("it converts to None")
        # Only str inputs may change type (e.g. "5" -> 5); 1.5 -> 1 is lossy.
        if coerced != value and not isinstance(value, str):
            raise ValueError(f"it converts to {coerced!r}, not exactly")
        _run_validators(target, coerced)
    except (ValidationError, TypeError, ValueError, ArithmeticError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        reason = reason.rstrip(".")
        raise ValueError(
            f"{label}: {value!r} is not a valid {model.__name__} "
            f"key: {reason}. {_expected(model, target)}"
        ) from exc
    return coerced


def _run_validators(target: models.Field[Any, Any], value: Any) -> None:
    """``target.run_validators(value)``, raising the first error.

    An integer column's range comes as a ``MinValueValidator`` and a
    ``MaxValueValidator`` with fixed limits: those are compared here, as calling
    them would compare, and only called to raise their own error.
    """
    for validator in target.validators:
        kind, limit = type(validator), getattr(validator, "limit_value", None)
        if callable(limit) or not (
            (kind is MinValueValidator and value >= limit)
            or (kind is MaxValueValidator and value <= limit)
        ):
            validator(value)


def _expected(model: type[models.Model], target: Any) -> str:
    """What set_<name>() accepts, for its error messages."""
    return (
        f"Pass a saved {model.__name__}, a value of {model.__name__}.{target.name} "
        f"({target.get_internal_type()}), or None."
    )


def check_in_scope(
    field: Field, instance: models.Model | None, key: Any, scope: Scope[Any]
) -> None:
    """Raise ``ValidationError`` naming the field and the value unless the row
    with ``key`` exists in ``scope`` (None: the default scope) and matches the
    field's ``limit_choices_to``: one query."""
    model = _target(field)
    scope_key = scopes.cache_key(model, True if scope is None else scope, field)
    queryset = scopes.resolve(model, scope_key)
    if instance is not None:
        queryset = queryset.using(router.db_for_read(model, instance=instance))
    target = field.target_field
    queryset = queryset.filter(**{target.attname: key}).complex_filter(field.get_limit_choices_to())
    if not queryset.exists():
        owner = f"{field.model.__name__}.{field.name}"
        raise ValidationError(
            # The value goes in as a parameter: a key holding "%" must not break
            # the message's formatting.
            f"{owner}: no {model.__name__} with {target.name} %(value)r in the scope it "
            f"is checked in (missing, hidden by the scope, or not an allowed choice).",
            code="invalid",
            params={"value": key},
        )
