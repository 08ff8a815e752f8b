"""BelongsToField and BelongsToOneField: a ForeignKey / OneToOneField that adds
``get_<name>``, ``set_<name>``, ``create_<name>`` and their async twins to its model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models, router
from django.utils.functional import cached_property

from . import accessors, cache, counters, scopes, types
from ._compat import (
    ForeignKeyDeferredAttribute,
    ForwardManyToOneDescriptor,
    ForwardOneToOneDescriptor,
    called_by_refresh_from_db,
    managers_map,
)
from .types import KeyValue, Scope

__all__ = ["BelongsToField", "BelongsToOneField"]

_ABSENT = object()


# ---------------------------------------------------------- descriptors


class KeyAttribute(ForeignKeyDeferredAttribute):
    """The ``<name>_id`` attribute: assigning it (even the same value, as
    ``refresh_from_db()`` does) drops the field's scoped answers, and its
    read-your-writes pin unless the value is the pinned key."""

    field: BelongsToMixin

    def __set__(self, instance: models.Model, value: Any) -> None:
        # ForeignKeyDeferredAttribute.__set__() (5.2, 6.0, 6.1), plus the drop.
        # The first assignment, from Model.__init__() for every row loaded,
        # finds nothing cached: it only stores the value.
        data = instance.__dict__
        attname = self.field.attname
        if attname in data:
            old = data[attname]
            if old != value and self.field.is_cached(instance):
                self.field.delete_cached_value(instance)
            cache.drop(self.field, instance, value)
            if called_by_refresh_from_db():
                cache.synced(self.field, instance)  # the value is the row's again
            elif old != value:
                cache.record_change(self.field, instance, old)
        elif not instance._state.adding and not called_by_refresh_from_db():
            # A deferred key assigned: what the row holds is not known here.
            cache.record_change(self.field, instance, cache.UNKNOWN)
        data[attname] = value


class _ReadsYourWrites:
    """``instance.<name>`` reads the key this instance just wrote with
    ``set_<name>()`` / ``create_<name>()`` where writes go, as ``get_<name>()`` does."""

    field: BelongsToMixin

    def get_object(self, instance: models.Model) -> Any:
        if self.field.strict:
            raise accessors.fetch_blocked(self.field, instance)
        alias = accessors.pinned_alias(self.field, instance)
        if alias is None:
            return super().get_object(instance)  # type: ignore[misc]
        queryset = self.get_queryset(instance=instance).using(alias)  # type: ignore[attr-defined]
        return queryset.get(self.field.get_reverse_related_filter(instance))

    def get_prefetch_querysets(
        self, instances: list[models.Model], querysets: list[Any] | None = None
    ) -> Any:
        """Django's prefetch of ``<name>``; a ``ScopedPrefetch`` loads its scope instead."""
        if querysets and isinstance(querysets[0], accessors.ScopedLoad):
            return accessors.prefetch_querysets(self.field, instances, querysets[0])
        return super().get_prefetch_querysets(instances, querysets)  # type: ignore[misc]

    def fetch_many(self, instances: Iterable[models.Model]) -> None:
        """Django 6.1's FETCH_PEERS: pinned instances are read one by one where
        writes go; the others together, as Django reads them."""
        instances = list(instances)
        if self.field.strict:
            raise accessors.fetch_blocked(self.field, instances[0])
        pinned = [i for i in instances if accessors.pinned_alias(self.field, i) is not None]
        for instance in pinned:
            if not self.field.is_cached(instance):
                self.fetch_one(instance)  # type: ignore[attr-defined]
        if len(pinned) < len(instances):
            others = [i for i in instances if all(i is not p for p in pinned)]
            super().fetch_many(others)  # type: ignore[misc]


class ForwardDescriptor(_ReadsYourWrites, ForwardManyToOneDescriptor):  # type: ignore[misc, unused-ignore]
    pass


class ForwardOneToOneDescriptorPinned(_ReadsYourWrites, ForwardOneToOneDescriptor):  # type: ignore[misc, unused-ignore]
    pass


class _RefusesDeferredKey:
    """``instance.<name>`` of a ``strict=True`` relation: a deferred key is refused
    before Django's descriptor loads it (a query). Only strict fields use it, so
    that other reads of ``instance.<name>`` keep Django's own ``__get__``."""

    field: BelongsToMixin

    def __get__(self, instance: models.Model | None, cls: Any = None) -> Any:
        if (
            instance is not None
            and self.field.attname not in instance.__dict__
            and not self.field.is_cached(instance)
        ):
            raise accessors.fetch_blocked(self.field, instance)
        return super().__get__(instance, cls)  # type: ignore[misc]


class StrictForwardDescriptor(_RefusesDeferredKey, ForwardDescriptor):  # type: ignore[misc, unused-ignore]
    pass


class StrictForwardOneToOneDescriptor(_RefusesDeferredKey, ForwardOneToOneDescriptorPinned):  # type: ignore[misc, unused-ignore]
    pass


# ------------------------------------------------------- injected methods


def _refresh_from_db(
    self: models.Model, using: str | None = None, *args: Any, **kwargs: Any
) -> None:
    """``Model.refresh_from_db()``, reading from the database writes go to while a
    relation of the instance is pinned (it just wrote the key): a lagging replica
    would hand the old row back, and the next ``save()`` would write it.

    Set on each model class with a BelongsTo field that does not define the
    method itself; it calls the next ``refresh_from_db`` in the MRO.
    """
    if using is None and not args and kwargs.get("from_queryset") is None:
        using = pinned_write_alias(self)
    mro = type(self).__mro__
    ours = next(
        i
        for i, klass in enumerate(mro)
        if klass.__dict__.get("refresh_from_db") is _refresh_from_db
    )
    for klass in mro[ours + 1 :]:
        method = klass.__dict__.get("refresh_from_db")
        if method is not None and method is not _refresh_from_db:
            method(self, using, *args, **kwargs)
            return


def pinned_write_alias(instance: models.Model) -> str | None:
    """Where writes go, if any BelongsTo relation of ``instance`` is pinned."""
    for field in instance._meta.concrete_fields:
        if isinstance(field, BelongsToMixin):
            alias = accessors.pinned_alias(field, instance)
            if alias is not None:
                return alias
    return None


class MethodSpec(NamedTuple):
    prefix: str  # the method is named prefix + the field's name + suffix
    suffix: str
    alters_data: bool
    protocol: type  # the Protocol that types and documents it


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("get_", "", False, types.GetAssociation),
    MethodSpec("set_", "", True, types.SetAssociation),
    MethodSpec("create_", "", True, types.CreateAssociation),
    MethodSpec("aget_", "", False, types.AsyncGetAssociation),
    MethodSpec("aset_", "", True, types.AsyncSetAssociation),
    MethodSpec("acreate_", "", True, types.AsyncCreateAssociation),
    MethodSpec("is_", "", False, types.IsAssociation),
    MethodSpec("has_", "_changed", False, types.HasChanged),
    MethodSpec("get_previous_", "_id", False, types.PreviousKey),
)


def method_names(name: str, specs: Sequence[MethodSpec] = METHODS) -> list[str]:
    """The names of the methods a field called ``name`` adds to its model."""
    return [spec.prefix + name + spec.suffix for spec in specs]


def install_methods(
    cls: type, name: str, specs: Sequence[MethodSpec], methods: Sequence[Callable[..., Any]]
) -> None:
    """Set ``methods`` (one per spec) on ``cls`` as the methods of a field called
    ``name``, named and marked ``alters_data`` as their specs say. Anything the
    model (or a base) defines itself wins, even None (an opt-out); a method
    installed for a base's copy of the field is replaced."""
    names = method_names(name, specs)
    existing = _class_attributes(cls, names)
    for spec, method_name, method in zip(specs, names, methods, strict=True):
        if method_name in existing and not _installed(existing[method_name]):
            continue
        method.__name__ = method_name
        method.__qualname__ = f"{cls.__qualname__}.{method_name}"
        if spec.alters_data:
            method.alters_data = True  # type: ignore[attr-defined]
        setattr(cls, method_name, method)


def _class_attributes(cls: type, names: list[str]) -> dict[str, Any]:
    """What ``cls`` (or its nearest base) defines under each of ``names``, unbound,
    as ``inspect.getattr_static()`` would find it; absent names are left out.

    One walk over the namespaces: attribute lookups on a class being built
    miss the type cache after each new method, and would walk the MRO per name.
    """
    found: dict[str, Any] = {}
    for klass in cls.__mro__[:-1]:  # not object, which defines none of them
        namespace = klass.__dict__
        if not namespace.keys().isdisjoint(names):
            for name in names:
                if name not in found and name in namespace:
                    found[name] = namespace[name]
    return found


def _make_methods(field: BelongsToMixin) -> tuple[Callable[..., Any], ...]:
    """The six methods of ``field``, real functions in the order of :data:`METHODS`
    (not partialmethods, which would drop ``alters_data``). Their docstrings are
    short and fixed, so that building them costs nothing; each names the
    Protocol in ``belongsto_ext.types`` that documents it."""

    get_related, set_related, create_related = (
        accessors.get_related,
        accessors.set_related,
        accessors.create_related,
    )

    def get(self: models.Model, *, scope: Scope[Any] = None, using: str | None = None) -> Any:
        """Return the related object in ``scope``, or None.

        See belongsto_ext.types.GetAssociation for the parameters.
        """
        return get_related(field, self, scope=scope, using=using)

    def set_(
        self: models.Model,
        value: KeyValue | models.Model | None,
        *,
        save: bool = True,
        validate: bool = False,
        **save_kwargs: Any,
    ) -> None:
        """Point the relation at ``value`` and save only that column.

        See belongsto_ext.types.SetAssociation for the parameters.
        """
        set_related(field, self, value, save=save, validate=validate, **save_kwargs)

    def create(
        self: models.Model,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> Any:
        """Create the related object from ``values`` and ``fields``, set it, and return it.

        See belongsto_ext.types.CreateAssociation for the parameters.
        """
        return create_related(field, self, values, save=save, **fields)

    async def aget(
        self: models.Model, *, scope: Scope[Any] = None, using: str | None = None
    ) -> Any:
        """Async get_<name>(): see belongsto_ext.types.AsyncGetAssociation."""
        return await accessors.aget_related(field, self, scope=scope, using=using)

    async def aset(
        self: models.Model,
        value: KeyValue | models.Model | None,
        *,
        save: bool = True,
        validate: bool = False,
        **save_kwargs: Any,
    ) -> None:
        """Async set_<name>(): see belongsto_ext.types.AsyncSetAssociation."""
        await accessors.aset_related(
            field, self, value, save=save, validate=validate, **save_kwargs
        )

    async def acreate(
        self: models.Model,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> Any:
        """Async create_<name>(): see belongsto_ext.types.AsyncCreateAssociation."""
        return await accessors.acreate_related(field, self, values, save=save, **fields)

    def is_(self: models.Model, other: KeyValue | models.Model | None) -> bool:
        """Whether the relation points at ``other`` (an object, a key or None), no query.

        See belongsto_ext.types.IsAssociation for the parameters.
        """
        return accessors.is_related(field, self, other)

    def has_changed(self: models.Model) -> bool:
        """Whether the key differs from the one the row holds, as far as known.

        See belongsto_ext.types.HasChanged.
        """
        return accessors.has_changed(field, self)

    def previous(self: models.Model) -> Any:
        """The key the row holds, as far as known (None if never saved).

        See belongsto_ext.types.PreviousKey.
        """
        return accessors.previous_key(field, self)

    return get, set_, create, aget, aset, acreate, is_, has_changed, previous


# The code of the functions the method factories build (_make_methods() and
# BelongsToAnyField's): it tells them from a method the model defines itself.
_CODES: set[Any] = set()


def register_methods(make_methods: Callable[[Any], Iterable[Callable[..., Any]]]) -> None:
    """Have :func:`_installed` know the functions ``make_methods`` builds."""
    _CODES.update(method.__code__ for method in make_methods(None))


def _installed(attr: object) -> bool:
    """Whether ``attr`` is a method a BelongsTo field installed."""
    return getattr(attr, "__code__", None) in _CODES


register_methods(_make_methods)


# Generic as django-stubs declares ForeignKey and OneToOneField: _ST is what
# ``book.author = ...`` accepts, _GT what ``book.author`` returns. django-stubs' mypy
# plugin fills them in from the target and ``null=``, as for the plain fields; pyright
# reads them from an annotation (``author: BelongsToField[Author | None, Author | None]``).
# At run time subscripting returns the class itself, as Django's ForeignKey does.
_ST = TypeVar("_ST", contravariant=True)
_GT = TypeVar("_GT", covariant=True)

if TYPE_CHECKING:

    class _Field(models.ForeignKey[_ST, _GT]):
        # Resolved by the time a BelongsTo field reads it (django-stubs 5.2 adds
        # Literal["self"], its value before that).
        related_model: type[models.Model]

else:

    class _Field:
        """The mixin's base for type checkers; at run time ``_Field[...]`` is ``object``."""

        def __class_getitem__(cls, params: object) -> type:
            return object


class BelongsToMixin(_Field[_ST, _GT]):
    """What BelongsToField and BelongsToOneField add to Django's fields."""

    descriptor_class = KeyAttribute
    # instance.<name> with strict=True (BelongsToField's and BelongsToOneField's own).
    strict_accessor_class: type[Any]
    # What deconstruct() reports: migrations see the plain Django field.
    django_path: str

    def __class_getitem__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls  # as ForeignKey's: the parameters are for type checkers

    def __init__(
        self,
        *args: Any,
        scopes: Iterable[str] | None = None,
        touch: bool | str = False,
        counter_cache: str | None = None,
        create_method: str | None = None,
        validate_scope: Scope[Any] = None,
        strict: bool = False,
        **kwargs: Any,
    ) -> None:
        # The options this app adds (none changes a column; see deconstruct()).
        # scopes: only these manager names are accepted as scope strings.
        self.scopes: tuple[str, ...] | None = (
            None if scopes is None else (scopes,) if isinstance(scopes, str) else tuple(scopes)
        )
        self.touch = touch  # set the target's auto_now (or this) column on each write
        self.counter_cache = counter_cache  # the target's column counting its owners
        self.create_method = create_method  # create_<name>() calls this manager method
        self.validate_scope = validate_scope  # validate() checks the row in this scope
        self.strict = strict  # a read that would query raises FieldFetchBlocked
        super().__init__(*args, **kwargs)
        if strict:
            self.forward_related_accessor_class = self.strict_accessor_class

    @cached_property
    def target_field(self) -> models.Field[Any, Any]:
        """The field of the target the key holds a value of (usually its primary key).

        Django's property looks it up on each access; it never changes once the
        target is resolved, and ``set_<name>()`` reads it on every call.
        """
        return self.foreign_related_fields[0]

    @cached_property
    def scoped_cache_name(self) -> str:
        """Where the scoped answers and the pin live in the instance's ``fields_cache``."""
        return f"{self.cache_name}:scoped"

    def contribute_to_class(
        self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any
    ) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        install_methods(cls, name, METHODS, _make_methods(self))
        if "refresh_from_db" not in cls.__dict__:
            cls.refresh_from_db = _refresh_from_db  # type: ignore[method-assign]
        if self.touch or self.counter_cache:
            counters.connect(self, cls)

    def contribute_to_related_class(self, cls: type[models.Model], related: Any) -> None:
        super().contribute_to_related_class(cls, related)  # type: ignore[misc, unused-ignore]
        if self.counter_cache:
            # The database keeps the column (counters.py): forms and the admin
            # leave it out, as a field without a form field. Not editable=False,
            # which migrations would see.
            column = _field_or_none(cls, self.counter_cache)
            if isinstance(column, models.IntegerField):
                column.formfield = _no_formfield  # type: ignore[method-assign, assignment, unused-ignore]

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """The key is being written: the row will hold it (change tracking)."""
        cache.saving(self, model_instance)
        return super().pre_save(model_instance, add)

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        """Django's check that the row exists, in ``validate_scope`` when given
        (with ``limit_choices_to``) rather than through the base manager."""
        if self.validate_scope is None or self.remote_field.parent_link:
            super().validate(value, model_instance)
            return
        models.Field.validate(self, value, model_instance)  # choices, null, blank
        if value is not None:
            accessors.check_in_scope(self, model_instance, value, self.validate_scope)

    # ------------------------------------------------------------ checks

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            *super().check(**kwargs),
            *self._check_method_names(),
            *self._check_primary_key(),
            *self._check_scopes(),
            *self._check_options(),
        ]

    def _check_method_names(
        self, specs: Sequence[MethodSpec] = METHODS
    ) -> list[checks.CheckMessage]:
        """Each method this field adds must reach the model: a field, a reverse
        accessor, Django's Model API or a non-method attribute of that name hides it."""
        model = self.model
        names = method_names(self.name, specs)
        defined = _class_attributes(model, names)
        errors: list[checks.CheckMessage] = []
        for method_name in names:
            error = self._check_method_name(model, method_name, defined.get(method_name, _ABSENT))
            if error is not None:
                errors.append(error)
        return errors

    def _check_method_name(
        self, model: type[models.Model], method_name: str, attr: Any
    ) -> checks.CheckMessage | None:
        if hasattr(models.Model, method_name):
            return checks.Error(
                f"{method_name}() is Django's Model method, not this field's.",
                hint=f"Rename the field '{self.name}'.",
                obj=self,
                id="belongsto_ext.E003",
            )
        generated = _generated_methods(model).get(method_name)
        # Django's partialmethod, or ours hiding it (declared first): either
        # way one of the two is lost. A function the user wrote is theirs.
        if generated is not None and (
            isinstance(attr, functools.partialmethod) or _installed(attr)
        ):
            other, why = generated
            return checks.Error(
                f"{method_name}() is Django's method for field '{other}' ({why}).",
                hint=f"Rename the field '{self.name}' or '{other}'.",
                obj=self,
                id="belongsto_ext.E003",
            )
        # A method (ours, or one the user wrote on purpose), None (an opt-out), or
        # a partialmethod (django-treebeard's get_parent).
        if (
            attr is None
            or attr is _ABSENT
            or callable(attr)
            or isinstance(attr, (classmethod, functools.partialmethod))
        ):
            return None
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignObjectRel):
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
        if hasattr(type(attr), "__get__"):
            return None  # a property or another descriptor the model defines itself
        return checks.Error(
            f"{method_name}() is unavailable: {model.__name__}.{method_name} is not a method.",
            hint=(
                f"Rename {model.__name__}.{method_name} ({type(attr).__name__}), or the "
                f"field '{self.name}'."
            ),
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

    def _check_scopes(self) -> list[checks.CheckMessage]:
        """Every name in ``scopes=`` must be a manager of the target (once resolved)."""
        target = self.remote_field.model
        if self.scopes is None or isinstance(target, str):
            return []
        managers = managers_map(target)
        return [
            checks.Error(
                f"scopes= names {name!r}, which is not a manager of {target.__name__}.",
                hint=f"{target.__name__}'s managers: {', '.join(sorted(managers))}.",
                obj=self,
                id="belongsto_ext.E005",
            )
            for name in self.scopes
            if not isinstance(name, str) or name not in managers
        ]

    def _check_options(self) -> list[checks.CheckMessage]:
        """counter_cache, touch, create_method and validate_scope must fit the
        target (once resolved)."""
        target = self.remote_field.model
        if isinstance(target, str):
            return []
        errors: list[checks.CheckMessage] = []

        def error(msg: str, hint: str, id: str) -> None:
            errors.append(checks.Error(msg, hint=hint, obj=self, id=f"belongsto_ext.{id}"))

        if self.counter_cache is not None:
            column = _field_or_none(target, self.counter_cache)
            if not isinstance(column, models.IntegerField):
                error(
                    f"counter_cache={self.counter_cache!r} is not an integer field of "
                    f"{target.__name__}.",
                    f"Add {self.counter_cache} = models.PositiveIntegerField(default=0) to "
                    f"{target.__name__}.",
                    "E006",
                )
        if isinstance(self.touch, str):
            if not isinstance(_field_or_none(target, self.touch), models.DateField):
                error(
                    f"touch={self.touch!r} is not a date or date-time field of {target.__name__}.",
                    "Name a DateTimeField or DateField of the target, or use touch=True.",
                    "E007",
                )
        elif self.touch and not counters.touched_fields(self):
            error(
                f"touch=True, but {target.__name__} has no auto_now date or date-time field.",
                f"Add an auto_now=True DateTimeField to {target.__name__}, or name a field.",
                "E007",
            )
        if self.counter_cache is not None or self.touch:
            for alias in connections:
                vendor = connections[alias].vendor
                if vendor not in counters.SUPPORTED_VENDORS and router.allow_migrate_model(
                    alias, self.model
                ):
                    option = "counter_cache=" if self.counter_cache is not None else "touch="
                    error(
                        f"{option} is not supported on database {alias!r} ({vendor}): the "
                        f"database keeps it with triggers, written for "
                        f"{' and '.join(counters.SUPPORTED_VENDORS)}.",
                        f"Remove {option} or route {self.model.__name__} to a "
                        f"PostgreSQL or SQLite database.",
                        "E014",
                    )
        if self.create_method is not None and not callable(
            getattr(target._default_manager, self.create_method, None)
        ):
            error(
                f"create_method={self.create_method!r} is not a method of "
                f"{target.__name__}'s default manager.",
                f"Name a method of {target.__name__}._default_manager, e.g. create_user.",
                "E008",
            )
        if self.validate_scope is not None:
            try:
                scopes.cache_key(target, self.validate_scope, self)
            except scopes.InvalidScope as exc:
                scope = self.validate_scope
                # repr() of a QuerySet runs it: no query in a system check.
                shown = (
                    f"<QuerySet of {scope.model._meta.label}>"
                    if isinstance(scope, models.QuerySet)
                    else repr(scope)
                )
                error(
                    f"validate_scope={shown} is not a scope of {target.__name__}.",
                    str(exc).partition(". ")[2],
                    "E009",
                )
        return errors

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        # The options this app adds change no column: migrations never see them.
        name, _path, args, kwargs = super().deconstruct()
        return name, self.django_path, args, kwargs


def _no_formfield(**kwargs: Any) -> None:
    """A counter column's form field: none (ModelForm and the admin skip it)."""


def _field_or_none(model: type[models.Model], name: str) -> Any:
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _generated_methods(model: type[models.Model]) -> dict[str, tuple[str, str]]:
    """The per-field methods Django adds to ``model``: ``{name: (field, why)}``."""
    generated = {}
    for field in model._meta.fields:
        if field.choices is not None:
            generated[f"get_{field.name}_display"] = (field.name, "its choices")
        if isinstance(field, models.DateField) and not field.null:
            for direction in ("next", "previous"):
                generated[f"get_{direction}_by_{field.name}"] = (field.name, "a date field")
    return generated


class BelongsToField(BelongsToMixin[_ST, _GT], models.ForeignKey[_ST, _GT]):
    """A ``ForeignKey`` whose model gains ``get_<name>``, ``set_<name>``,
    ``create_<name>`` and ``aget_<name>``, ``aset_<name>``, ``acreate_<name>``."""

    django_path = "django.db.models.ForeignKey"
    forward_related_accessor_class = ForwardDescriptor
    strict_accessor_class = StrictForwardDescriptor

    def get_internal_type(self) -> str:
        # Django's default is the class name; code that compares it (MySQL's
        # schema editor, django-lifecycle) must see a ForeignKey.
        return "ForeignKey"


class BelongsToOneField(BelongsToMixin[_ST, _GT], models.OneToOneField[_ST, _GT]):
    """A ``OneToOneField`` with the same methods as :class:`BelongsToField`."""

    django_path = "django.db.models.OneToOneField"
    forward_related_accessor_class = ForwardOneToOneDescriptorPinned
    strict_accessor_class = StrictForwardOneToOneDescriptor

    def get_internal_type(self) -> str:
        return "OneToOneField"
