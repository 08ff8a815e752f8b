"""BelongsToField and BelongsToOneField: a ForeignKey / OneToOneField that adds
``get_<name>``, ``set_<name>``, ``create_<name>`` and their async twins to its model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db import models
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.utils.functional import cached_property

from . import accessors, scopes

__all__ = ["BelongsToField", "BelongsToOneField"]

# The attribute that marks a method as installed by this app (its value is the field).
INJECTED = "_belongsto_field"


class KeyAttribute(ForeignKeyDeferredAttribute):
    """The ``<name>_id`` attribute: assigning it (even the same value, as
    ``refresh_from_db()`` does) drops the field's cached scoped results."""

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance._state.fields_cache.pop(self.field.scoped_cache_name, None)
        super().__set__(instance, value)


# ------------------------------------------------------- injected methods
#
# Each factory returns a real function (not a partialmethod, which would drop
# ``alters_data``) bound to one field.


def _make_get(field: BelongsToField) -> Callable[..., Any]:
    def get(self: models.Model, *, scope: scopes.Scope = None, using: str | None = None) -> Any:
        return accessors.get_related(field, self, scope, using)

    return get


def _make_aget(field: BelongsToField) -> Callable[..., Any]:
    async def aget(
        self: models.Model, *, scope: scopes.Scope = None, using: str | None = None
    ) -> Any:
        return await accessors.aget_related(field, self, scope, using)

    return aget


def _make_set(field: BelongsToField) -> Callable[..., Any]:
    def set_(self: models.Model, value: Any, *, save: bool = True, **save_kwargs: Any) -> None:
        accessors.set_related(field, self, value, save, **save_kwargs)

    return set_


def _make_aset(field: BelongsToField) -> Callable[..., Any]:
    async def aset(
        self: models.Model, value: Any, *, save: bool = True, **save_kwargs: Any
    ) -> None:
        await accessors.aset_related(field, self, value, save, **save_kwargs)

    return aset


def _make_create(field: BelongsToField) -> Callable[..., Any]:
    def create(
        self: models.Model,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> Any:
        return accessors.create_related(field, self, values, save, **fields)

    return create


def _make_acreate(field: BelongsToField) -> Callable[..., Any]:
    async def acreate(
        self: models.Model,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> Any:
        return await accessors.acreate_related(field, self, values, save, **fields)

    return acreate


# (name template, factory, alters_data, docstring template)
METHODS: tuple[tuple[str, Callable[[Any], Callable[..., Any]], bool, str], ...] = (
    (
        "get_%s",
        _make_get,
        False,
        "Return the related {target} in ``scope``, or None (at most one query, cached per scope).",
    ),
    (
        "set_%s",
        _make_set,
        True,
        "Point {name} at a saved {target}, its key, or None; save only that column unless save=False.",
    ),
    (
        "create_%s",
        _make_create,
        True,
        "Create a {target} from ``values``/``fields`` and set it, in one transaction; return it.",
    ),
    ("aget_%s", _make_aget, False, "Async get_{name}()."),
    ("aset_%s", _make_aset, True, "Async set_{name}()."),
    ("acreate_%s", _make_acreate, True, "Async create_{name}(), atomic as the sync one."),
)


def method_names(name: str) -> list[str]:
    """The names of the methods a field called ``name`` adds to its model."""
    return [template % name for template, *_ in METHODS]


class BelongsToMixin:
    """What BelongsToField and BelongsToOneField add to Django's fields."""

    descriptor_class = KeyAttribute
    # What deconstruct() reports: migrations see the plain Django field.
    django_path: str

    @cached_property
    def scoped_cache_name(self) -> str:
        return f"{self.cache_name}:scoped"

    def contribute_to_class(self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        self._update_fields: dict[type[models.Model], list[str]] = {}
        for template, factory, alters_data, doc in METHODS:
            method_name = template % self.name
            existing = getattr(cls, method_name, None)
            # A method the model (or a base) defines itself wins; one this app
            # injected for a base's copy of the field is replaced.
            if existing is not None and getattr(existing, INJECTED, None) is None:
                continue
            method = factory(self)
            method.__name__ = method_name
            method.__qualname__ = f"{cls.__qualname__}.{method_name}"
            method.__module__ = cls.__module__
            method.__doc__ = doc.format(name=self.name, target=self._target_name())
            if alters_data:
                method.alters_data = True
            setattr(method, INJECTED, self)
            setattr(cls, method_name, method)

    def _target_name(self) -> str:
        model = self.remote_field.model
        return model if isinstance(model, str) else model.__name__

    def update_fields_for(self, model: type[models.Model]) -> list[str]:
        """This column plus ``model``'s ``auto_now`` columns: what ``set_<name>`` saves."""
        try:
            return self._update_fields[model]
        except KeyError:
            names = [self.name] + [
                f.name
                for f in model._meta.concrete_fields
                if getattr(f, "auto_now", False) and f.name != self.name
            ]
            self._update_fields[model] = names
            return names

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        return name, self.django_path, args, kwargs


class BelongsToField(BelongsToMixin, models.ForeignKey):
    """A ``ForeignKey`` whose model gains ``get_<name>``, ``set_<name>``,
    ``create_<name>`` and ``aget_<name>``, ``aset_<name>``, ``acreate_<name>``."""

    django_path = "django.db.models.ForeignKey"


class BelongsToOneField(BelongsToMixin, models.OneToOneField):
    """A ``OneToOneField`` with the same methods as :class:`BelongsToField`."""

    django_path = "django.db.models.OneToOneField"
