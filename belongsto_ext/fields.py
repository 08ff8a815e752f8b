"""BelongsToField and BelongsToOneField: a ForeignKey / OneToOneField that adds
``get_<name>``, ``set_<name>``, ``create_<name>`` and their async twins to its model.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.db import models
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.utils.functional import cached_property

from . import accessors, scopes, types

__all__ = ["BelongsToField", "BelongsToOneField"]

# The attribute that marks a method as installed by this app (its value is the field).
INJECTED = "_belongsto_field"
_ABSENT = object()


def _class_attribute(cls: type, name: str) -> Any:
    """``name`` as the class (or its nearest base) defines it, unbound; _ABSENT if none."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _ABSENT


class KeyAttribute(ForeignKeyDeferredAttribute):
    """The ``<name>_id`` attribute: assigning it (even the same value, as
    ``refresh_from_db()`` does) drops the field's cached scoped results."""

    field: BelongsToMixin

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance._state.fields_cache.pop(self.field.scoped_cache_name, None)
        super().__set__(instance, value)  # type: ignore[misc]  # not in django-stubs


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


# (name template, factory, alters_data, the Protocol that types and documents it)
MethodSpec = tuple[str, Callable[[Any], Callable[..., Any]], bool, type]
METHODS: tuple[MethodSpec, ...] = (
    ("get_%s", _make_get, False, types.GetAssociation),
    ("set_%s", _make_set, True, types.SetAssociation),
    ("create_%s", _make_create, True, types.CreateAssociation),
    ("aget_%s", _make_aget, False, types.AsyncGetAssociation),
    ("aset_%s", _make_aset, True, types.AsyncSetAssociation),
    ("acreate_%s", _make_acreate, True, types.AsyncCreateAssociation),
)


@functools.cache
def _doc_template(protocol: type) -> str:
    """The summary line of ``protocol.__call__``'s docstring and where the rest is.

    Computed once per protocol, and short, so that installing the methods
    keeps model class creation as cheap as with a plain ForeignKey.
    """
    summary = inspect.cleandoc(protocol.__call__.__doc__ or "").partition("\n\n")[0]
    return f"{summary}\n\nSee {protocol.__module__}.{protocol.__qualname__} for the parameters."


class InjectedMethod(tuple):
    """A method a field adds to its model, built on first access:
    ``InjectedMethod((field, method name, spec))``.

    Making six functions per field when the model class is created would make
    class creation measurably slower than with a plain ForeignKey; instead the
    first access builds the real function (with ``alters_data`` where it
    writes) and puts it on the class in place of this descriptor. It is a
    tuple so that making one costs no Python-level call.
    """

    __slots__ = ()

    # INJECTED: a base's injected method is replaced.
    _belongsto_field = property(operator.itemgetter(0))

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        field, name, spec = self
        cls = field.model  # the class this field's copy was added to
        function = field.build_method(cls, name, spec)
        if cls.__dict__.get(name) is self:
            setattr(cls, name, function)
        return function if instance is None else function.__get__(instance, owner)


def method_names(name: str) -> list[str]:
    """The names of the methods a field called ``name`` adds to its model."""
    return [template % name for template, *_ in METHODS]


if TYPE_CHECKING:
    # Parametrized for django-stubs, which types ``book.author`` from them.
    _Field = models.ForeignKey[Any, Any]
    _ForeignKey = models.ForeignKey[Any, Any]
    _OneToOneField = models.OneToOneField[Any, Any]
else:
    _Field = object
    _ForeignKey = models.ForeignKey
    _OneToOneField = models.OneToOneField


class BelongsToMixin(_Field):
    """What BelongsToField and BelongsToOneField add to Django's fields."""

    descriptor_class = KeyAttribute
    # What deconstruct() reports: migrations see the plain Django field.
    django_path: str

    @cached_property
    def scoped_cache_name(self) -> str:
        return f"{self.cache_name}:scoped"

    @cached_property
    def target_attname(self) -> str:
        """The attribute of the related model the key points at (usually its pk)."""
        return self.target_field.attname

    @cached_property
    def int_key_range(self) -> tuple[float, float] | None:
        """The range of ``int`` keys ``set_<name>()`` accepts as they are, if any."""
        return accessors.integer_key_range(self.target_field)

    def contribute_to_class(
        self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any
    ) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        # _class_attribute() written out: this runs for every field of every
        # model at start-up, and a call per name shows in the class-creation time.
        namespaces = [klass.__dict__ for klass in cls.__mro__]
        for spec in METHODS:
            method_name = spec[0] % name
            for namespace in namespaces:
                if method_name in namespace:
                    existing = namespace[method_name]
                    break
            else:
                existing = _ABSENT
            # Anything the model (or a base) defines itself wins, even None (an
            # opt-out); a method injected for a base's copy of the field is replaced.
            if existing is _ABSENT or getattr(existing, INJECTED, None) is not None:
                setattr(cls, method_name, InjectedMethod((self, method_name, spec)))

    def build_method(self, cls: type[models.Model], method_name: str, spec: MethodSpec) -> Any:
        """The real function behind ``cls.<method_name>``, named and documented."""
        _template, factory, alters_data, protocol = spec
        method: Any = factory(self)
        method.__name__ = method_name
        method.__qualname__ = f"{cls.__qualname__}.{method_name}"
        method.__module__ = cls.__module__
        doc = _doc_template(protocol)
        method.__doc__ = doc.replace("<name>", self.name).replace("<Target>", self._target_name())
        if alters_data:
            method.alters_data = True
        setattr(method, INJECTED, self)
        return method

    def _target_name(self) -> str:
        model = self.remote_field.model
        return model if isinstance(model, str) else model.__name__

    # ------------------------------------------------------------ checks

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            *super().check(**kwargs),
            *self._check_method_names(),
            *self._check_primary_key(),
        ]

    def _check_method_names(self) -> list[checks.CheckMessage]:
        """Each method this field adds must reach the model: a field, a reverse
        accessor, Django's Model API or a non-method attribute of that name hides it."""
        model = self.model
        errors: list[checks.CheckMessage] = []
        for method_name in method_names(self.name):
            error = self._check_method_name(model, method_name)
            if error is not None:
                errors.append(error)
        return errors

    def _check_method_name(
        self, model: type[models.Model], method_name: str
    ) -> checks.CheckMessage | None:
        if hasattr(models.Model, method_name):
            return checks.Error(
                f"{method_name}() is Django's Model method, not this field's.",
                hint=f"Rename the field '{self.name}'.",
                obj=self,
                id="belongsto_ext.E003",
            )
        attr = _class_attribute(model, method_name)
        # A method (ours, or one the user wrote on purpose) or None (an opt-out).
        if (
            attr is None
            or attr is _ABSENT
            or callable(attr)
            or isinstance(attr, (classmethod, InjectedMethod))
        ):
            return None
        for field in model._meta.get_fields():
            if isinstance(field, ForeignObjectRel):
                if field.get_accessor_name() == method_name:
                    other = f"{field.field.model._meta.label}.{field.field.name}"
                    return checks.Error(
                        f"{method_name}() is unavailable: it is the reverse accessor of {other}.",
                        hint=f"Give {other} another related_name.",
                        obj=self,
                        id="belongsto_ext.E002",
                    )
            elif method_name in (field.name, getattr(field, "attname", None)):
                return checks.Error(
                    f"{method_name}() is unavailable: field '{field.name}' uses that name.",
                    hint=f"Rename the field '{field.name}' or '{self.name}'.",
                    obj=self,
                    id="belongsto_ext.E001",
                )
        kind = "property" if isinstance(attr, property) else type(attr).__name__
        return checks.Error(
            f"{method_name}() is unavailable: {model.__name__}.{method_name} is not a method.",
            hint=f"Rename {model.__name__}.{method_name} ({kind}), or the field '{self.name}'.",
            obj=self,
            id="belongsto_ext.E004",
        )

    def _check_primary_key(self) -> list[checks.CheckMessage]:
        """set_/create_ move the key: impossible for a primary key or a parent link."""
        if not (self.primary_key or self.remote_field.parent_link):
            return []
        what = "a primary key" if self.primary_key else "a parent link"
        return [
            checks.Warning(
                f"set_{self.name}() and create_{self.name}() cannot change {what}.",
                hint=f"Only call get_{self.name}() on this field, or use a plain key field.",
                obj=self,
                id="belongsto_ext.W001",
            )
        ]

    @cached_property
    def _update_fields(self) -> dict[type[models.Model], list[str]]:
        """``update_fields_for()``'s answers, per model (made on first use, not at class creation)."""
        return {}

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

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        return name, self.django_path, args, kwargs


class BelongsToField(BelongsToMixin, _ForeignKey):
    """A ``ForeignKey`` whose model gains ``get_<name>``, ``set_<name>``,
    ``create_<name>`` and ``aget_<name>``, ``aset_<name>``, ``acreate_<name>``."""

    django_path = "django.db.models.ForeignKey"


class BelongsToOneField(BelongsToMixin, _OneToOneField):
    """A ``OneToOneField`` with the same methods as :class:`BelongsToField`."""

    django_path = "django.db.models.OneToOneField"
