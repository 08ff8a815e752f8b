"""BelongsToAnyField: the polymorphic belongs-to, a ``GenericForeignKey`` with
scopes, ``models=``, ``on_delete=``, ``strict=`` and batch loading.

The owner keeps Django's two columns (a ``ForeignKey`` to ``ContentType`` and
an object id); nothing here adds a column, so swapping
``GenericForeignKey("content_type", "object_id")`` for this field needs no
migration. Its methods are the shared ones (``belongsto_ext.accessors``), with
the hooks in ``accessors.py`` here; ``on_delete`` is in ``deletion.py``.
Without ``models=`` there is no model to link: any ``on_delete`` but
``DO_NOTHING`` is refused by a system check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps as global_apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Model

from .. import _compat, answers, batch, methods, policy, scopes
from .. import accessors as A
from . import accessors
from .deletion import HANDLERS, link_model

__all__ = ["AllowedModels", "BelongsToAnyField"]

_ABSENT = object()


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
        scopes: Iterable[str] | None = None,
        strict: bool | str | None = None,
        fetch: str | bool | None = None,
    ) -> None:
        super().__init__(ct_field, fk_field, for_concrete_model)
        self.allowed: tuple[type[Model] | str, ...] | None = (
            None if models is None else ((models,) if isinstance(models, str) else tuple(models))
        )
        self.on_delete = on_delete
        # scopes: only these manager names are accepted as scope strings.
        self.scopes: tuple[str, ...] | None = (
            None if scopes is None else (scopes,) if isinstance(scopes, str) else tuple(scopes)
        )
        # strict= and fetch=, as BelongsToField's (policy.py resolves them).
        self.strict_option, self.fetch_option = strict, fetch
        self.strict: bool | str = False
        self.fetch: str | bool = False
        self._resolved: tuple[type[Model], ...] | None = None
        self.link_model: type[Model] | None = None  # see link_model()

    belongs_to = True  # relation.is_belongs_to()
    keyed_by_context = False  # answers are named by the scope= argument
    key_attname = ""  # no attribute holds the key: owner_key() reads the two columns
    set_savepoint = True  # a failed key check leaves the caller's transaction usable
    touch = False
    counter_cache = None
    create_method = None

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
            using, model = _compat.db(obj), type(obj)
        manager = ContentType.objects if using is None else accessors.content_types(using)
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
        policy.register(self, cls)
        super().contribute_to_class(cls, name, **kwargs)
        if _DescriptorBase is not object:
            setattr(cls, name, _AnyDescriptor(self))
        methods.install(cls, self, methods.ANY_METHODS)
        if cls._meta.abstract or getattr(self, "mti_inherited", False) or not self.allowed:
            return  # a multi-table child: the parent's field validates and links
        _compat.lazy_related_operation(self._validate_models, cls)
        if HANDLERS.get(self.on_delete, _ABSENT) not in (None, _ABSENT):
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

    def get_prefetch_querysets(self, instances: Any, querysets: Any = None) -> Any:
        """Django's prefetch of ``<name>`` (5.2); a ``ScopedPrefetch`` loads its scope instead."""
        if querysets and isinstance(querysets[0], batch.ScopedLoad):
            return batch.prefetch_querysets(self, instances, querysets[0])
        return super().get_prefetch_querysets(instances, querysets)  # type: ignore[misc, unused-ignore]

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        """``owner.<name>`` (5.2, where the field is its own descriptor)."""
        return read_attribute(self, instance, super().__get__, cls)

    # ------------------------------------------------ the hooks (relation.Relation)

    def owner_key(self, instance: models.Model, strict: bool = False) -> Any:
        return accessors.owner_key(self, instance, strict)

    def target_of(self, instance: models.Model, key: Any) -> tuple[Any, Any]:
        return accessors.target_of(self, instance, key)

    def pin_value(self, instance: models.Model) -> Any:
        data = instance.__dict__
        return (data.get(self.ct_attname), data.get(self.fk_field))

    def loaded(self, instance: models.Model) -> bool:
        return self.ct_attname in instance.__dict__ and self.fk_field in instance.__dict__

    def scope_spec(self, scope: Any) -> scopes.PerModel:
        return scopes.per_model(self, scope)

    def model_key(self, spec: scopes.PerModel, model: type[models.Model]) -> Any:
        return scopes.cache_key(model, spec.of(model), self)

    def row_key(self, model: type[models.Model]) -> tuple[str, str]:
        return "pk", model._meta.pk.attname  # type: ignore[union-attr, unused-ignore]

    def prepare(self, instance: models.Model, args: tuple[Any, ...], validate: bool) -> Any:
        return accessors.prepare(self, instance, args, validate)

    def point(self, instance: models.Model, prepared: Any) -> None:
        accessors.point(self, instance, prepared)

    def lock_target(self, instance: models.Model, prepared: Any) -> None:
        accessors.lock_target(self, instance, prepared)

    def creating(self, instance: models.Model, args: tuple[Any, ...]) -> tuple[Any, Any]:
        if not 1 <= len(args) <= 2:
            raise TypeError(
                f"{type(instance).__name__}.{self.name}: create_{self.name}() takes a model "
                f"and a mapping of values ({len(args)} arguments given)."
            )
        return accessors.check_model(self, instance, args[0]), (args[1] if len(args) > 1 else None)

    def compared(self, instance: models.Model, other: Any) -> tuple[Any, Any]:
        return accessors.compared(self, instance, other)

    def written_columns(self) -> tuple[str, ...]:
        return (self.ct_field, self.fk_field)

    # -------------------------------------------------------------- checks

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = [*super().check(**kwargs)]
        if errors:
            return errors  # a missing or wrong column: nothing else can be checked
        return [
            *self._check_models(),
            *self._check_on_delete(),
            *self._check_object_id(),
            *self._check_scopes(),
            *methods.check_method_names(self, methods.ANY_METHODS),
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
        handler = HANDLERS.get(self.on_delete, _ABSENT)
        if handler is _ABSENT:
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

    def _check_scopes(self) -> list[checks.CheckMessage]:
        """E005: every name in ``scopes=`` must be a manager of each allowed model."""
        if self.scopes is None:
            return []
        return [
            self._error(
                f"scopes= names {name!r}, which is not a manager of {model.__name__}.",
                f"{model.__name__}'s managers: {', '.join(sorted(_compat.managers_map(model)))}.",
                "E005",
            )
            for model in self.target_models() or ()
            for name in self.scopes
            if not isinstance(name, str) or name not in _compat.managers_map(model)
        ]


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
    """Django 6.0+'s ``GenericForeignKeyDescriptor``: ``owner.<name>`` with
    ``strict=`` and the pin, and a ``ScopedPrefetch`` in place of its prefetch."""

    field: Any  # the BelongsToAnyField

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        return read_attribute(self.field, instance, super().__get__, cls)

    def get_prefetch_querysets(self, instances: list[models.Model], querysets: Any = None) -> Any:
        if querysets and isinstance(querysets[0], batch.ScopedLoad):
            return batch.prefetch_querysets(self.field, instances, querysets[0])
        return super().get_prefetch_querysets(instances, querysets)  # type: ignore[misc, unused-ignore]


def read_attribute(field: BelongsToAnyField, instance: Any, django_get: Any, cls: Any) -> Any:
    """``owner.<name>``: Django's read, unless it would query for a ``strict=True``
    field (refused) or for a key the owner just wrote (read where writes go,
    through the base manager as Django reads it)."""
    if instance is None or not (field.strict or field.fetch or answers.pinned(field, instance)):
        return django_get(instance, cls)
    key = field.owner_key(instance, bool(field.strict))
    if key is None:
        return django_get(instance, cls)  # no target: Django asks nothing
    if field.is_cached(instance):
        obj = field.get_cached_value(instance)
        target = field.target_of(instance, key)
        if obj is None or (
            target[0] is not None
            and obj._meta.concrete_model is target[0]._meta.concrete_model
            and obj.pk == target[1]
        ):
            return obj
    if batch.read_peers(field, instance):
        return field.get_cached_value(instance)
    if not answers.pinned(field, instance):
        return django_get(instance, cls)
    obj = A.get_related(field, instance, scope=False)
    field.set_cached_value(instance, obj)
    return obj
