"""The methods a field adds to its model: their specs, one factory, installing
them (a method the model defines itself wins), and the checks that each one
reaches the model (E001-E004), for both field kinds."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from django.core import checks
from django.db import models

from . import accessors, tracking, types

__all__ = ["ANY_METHODS", "METHODS", "MethodSpec", "check_method_names", "install", "names"]

_ABSENT = object()
# The attribute an installed method carries: it tells ours from the model's own.
MARK = "belongsto_field"


class MethodSpec(NamedTuple):
    prefix: str  # the method is named prefix + the field's name + suffix
    suffix: str
    alters_data: bool
    protocol: type  # the Protocol that types and documents it
    call: Callable[..., Any]  # call(field, instance, *args, **kwargs)
    summary: str  # the first line of its docstring
    is_async: bool  # call is a coroutine function


def _spec(
    prefix: str, suffix: str, protocol: type, call: Callable[..., Any], summary: str
) -> MethodSpec:
    writes = prefix in ("set_", "create_", "aset_", "acreate_")
    return MethodSpec(
        prefix, suffix, writes, protocol, call, summary, inspect.iscoroutinefunction(call)
    )


A = accessors
METHODS: tuple[MethodSpec, ...] = (
    _spec(
        "get_",
        "",
        types.GetAssociation,
        A.get_related,
        "Return the related object in ``scope``, or None.",
    ),
    _spec(
        "set_",
        "",
        types.SetAssociation,
        A.set_related,
        "Point the relation at ``value`` and save only that column.",
    ),
    _spec(
        "create_",
        "",
        types.CreateAssociation,
        A.create_related,
        "Create the related object from ``values`` and ``fields``, set it, and return it.",
    ),
    _spec("aget_", "", types.AsyncGetAssociation, A.aget_related, "Async get_<name>()."),
    _spec("aset_", "", types.AsyncSetAssociation, A.aset_related, "Async set_<name>()."),
    _spec(
        "acreate_", "", types.AsyncCreateAssociation, A.acreate_related, "Async create_<name>()."
    ),
    _spec(
        "is_",
        "",
        types.IsAssociation,
        A.is_related,
        "Whether the relation points at ``other`` (an object, a key or None), no query.",
    ),
    _spec(
        "has_",
        "_changed",
        types.HasChanged,
        tracking.has_changed,
        "Whether the key differs from the one the row holds, as far as known.",
    ),
    _spec(
        "get_previous_",
        "_id",
        types.PreviousKey,
        tracking.previous_key,
        "The key the row holds, as far as known (None if never saved).",
    ),
)

ANY_METHODS: tuple[MethodSpec, ...] = (
    _spec(
        "get_",
        "",
        types.GetAnyAssociation,
        A.get_related,
        "Return the target in ``scope``, or None.",
    ),
    _spec(
        "set_",
        "",
        types.SetAnyAssociation,
        A.set_related,
        "Point the relation at an instance, at (Model, key), or at None, and save.",
    ),
    _spec(
        "create_",
        "",
        types.CreateAnyAssociation,
        A.create_related,
        "Create an instance of ``model``, point at it and save, in one transaction.",
    ),
    _spec("aget_", "", types.AsyncGetAnyAssociation, A.aget_related, "Async get_<name>()."),
    _spec("aset_", "", types.AsyncSetAnyAssociation, A.aset_related, "Async set_<name>()."),
    _spec(
        "acreate_", "", types.AsyncCreateAnyAssociation, A.acreate_related, "Async create_<name>()."
    ),
    _spec(
        "is_",
        "",
        types.IsAnyAssociation,
        A.is_related,
        "Whether the relation points at ``other`` (an instance or None), no query.",
    ),
)


def names(name: str, specs: Sequence[MethodSpec]) -> list[str]:
    """The names of the methods a field called ``name`` adds to its model."""
    return [spec.prefix + name + spec.suffix for spec in specs]


@functools.cache
def _factory(spec: MethodSpec) -> Callable[[Any], Callable[..., Any]]:
    """A function that makes the method ``spec`` describes for a field: compiled
    once per spec from the Protocol's signature, so that a call passes its
    arguments on as written (no ``*args``/``**kwargs`` packed on every call)."""
    signature = inspect.signature(spec.protocol.__call__)
    params = list(signature.parameters.values())[1:]  # without self
    defaults = {f"_d{i}": p.default for i, p in enumerate(params) if p.default is not p.empty}
    declared, passed, star = [], [], False
    for i, p in enumerate(params):
        default = f"=_d{i}" if p.default is not p.empty else ""
        if p.kind is p.POSITIONAL_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
            declared.append(f"{p.name}{default}")
            passed.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            declared.append(f"*{p.name}")
            passed.append(f"*{p.name}")
            star = True
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                declared.append("*")
                star = True
            declared.append(f"{p.name}{default}")
            passed.append(f"{p.name}={p.name}")
        else:  # VAR_KEYWORD
            declared.append(f"**{p.name}")
            passed.append(f"**{p.name}")
        if p.kind is p.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        ):
            declared.append("/")
    prefix, wait = ("async ", "await ") if spec.is_async else ("", "")
    source = (
        f"def factory(field):\n"
        f"    {prefix}def method(self, {', '.join(declared)}):\n"
        f"        return {wait}call(field, self, {', '.join(passed)})\n"
        f"    return method\n"
    )
    namespace: dict[str, Any] = {"call": spec.call, **defaults}
    exec(source, namespace)
    factory: Callable[[Any], Callable[..., Any]] = namespace["factory"]
    return factory


def make(field: Any, spec: MethodSpec) -> Callable[..., Any]:
    """The method ``spec`` describes, bound to ``field``: a real function (not a
    partialmethod, which would drop ``alters_data``), with the Protocol's
    signature and a short docstring naming the Protocol that documents it."""
    method = _factory(spec)(field)
    method.__doc__ = (
        f"{spec.summary}\n\nSee belongsto_ext.types.{spec.protocol.__name__} for the parameters."
    )
    setattr(method, MARK, field)
    if spec.alters_data:
        method.alters_data = True  # type: ignore[attr-defined]
    return method


def install(cls: type, field: Any, specs: Sequence[MethodSpec]) -> None:
    """Set the methods of ``field`` on ``cls``, named after the field. Anything the
    model (or a base) defines itself wins, even None (an opt-out); a method
    installed for a base's copy of the field is replaced."""
    method_names = names(field.name, specs)
    existing = _class_attributes(cls, method_names)
    for spec, method_name in zip(specs, method_names, strict=True):
        if method_name in existing and not installed(existing[method_name]):
            continue
        method = make(field, spec)
        method.__name__ = method_name
        method.__qualname__ = f"{cls.__qualname__}.{method_name}"
        setattr(cls, method_name, method)


def installed(attr: object) -> bool:
    """Whether ``attr`` is a method a BelongsTo field installed."""
    return getattr(attr, MARK, None) is not None


def _class_attributes(cls: type, wanted: list[str]) -> dict[str, Any]:
    """What ``cls`` (or its nearest base) defines under each of ``wanted``,
    unbound, as ``inspect.getattr_static()`` would find it; absent names are
    left out. One walk over the namespaces: attribute lookups on a class being
    built miss the type cache after each new method."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__[:-1]:  # not object, which defines none of them
        namespace = klass.__dict__
        if not namespace.keys().isdisjoint(wanted):
            for name in wanted:
                if name not in found and name in namespace:
                    found[name] = namespace[name]
    return found


# ------------------------------------------------------------ checks


def check_method_names(field: Any, specs: Sequence[MethodSpec]) -> list[checks.CheckMessage]:
    """Each method ``field`` adds must reach the model: Django's Model API (E003),
    a method Django generates for another field (E003), a reverse accessor
    (E002), a field (E001) or a non-method attribute (E004) of that name hides it."""
    model = field.model
    method_names = names(field.name, specs)
    defined = _class_attributes(model, method_names)
    errors: list[checks.CheckMessage] = []
    for name in method_names:
        attr = defined.get(name, _ABSENT)
        for check in (_check_django_api, _check_generated, _check_relations, _check_attribute):
            error = check(field, model, name, attr)
            if error is not None:
                errors.append(error)
                break
    return errors


def _error(field: Any, msg: str, hint: str, id: str) -> checks.Error:
    return checks.Error(msg, hint=hint, obj=field, id=f"belongsto_ext.{id}")


def _check_django_api(field: Any, model: type, name: str, attr: Any) -> checks.Error | None:
    """E003: the name is a method of Django's Model."""
    if hasattr(models.Model, name):
        return _error(
            field,
            f"{name}() is Django's Model method, not this field's.",
            f"Rename the field '{field.name}'.",
            "E003",
        )
    return None


def _check_generated(field: Any, model: type, name: str, attr: Any) -> checks.Error | None:
    """E003: Django's per-field method of that name (``get_<f>_display``,
    ``get_next_by_<f>``) and ours hide one another; a function the user wrote
    is theirs."""
    generated = _generated_methods(model).get(name)
    if generated is None or not (isinstance(attr, functools.partialmethod) or installed(attr)):
        return None
    other, why = generated
    return _error(
        field,
        f"{name}() is Django's method for field '{other}' ({why}).",
        f"Rename the field '{field.name}' or '{other}'.",
        "E003",
    )


def _usable(attr: Any) -> bool:
    """A method (ours, or one the user wrote on purpose), None (an opt-out), or
    a partialmethod (django-treebeard's get_parent)."""
    return (
        attr is None
        or attr is _ABSENT
        or callable(attr)
        or isinstance(attr, (classmethod, functools.partialmethod))
    )


def _check_relations(field: Any, model: type, name: str, attr: Any) -> checks.Error | None:
    """E002: a reverse accessor of that name; E001: a field of that name."""
    if _usable(attr):
        return None
    for other in model._meta.get_fields():  # type: ignore[attr-defined]
        if isinstance(other, models.ForeignObjectRel):
            if other.get_accessor_name() == name:
                label = f"{other.field.model._meta.label}.{other.field.name}"
                return _error(
                    field,
                    f"{name}() is unavailable: it is the reverse accessor of {label}.",
                    f"Give {label} another related_name.",
                    "E002",
                )
        elif name in (other.name, getattr(other, "attname", None)):
            return _error(
                field,
                f"{name}() is unavailable: field '{other.name}' uses that name.",
                f"Rename the field '{other.name}' or '{field.name}'.",
                "E001",
            )
    return None


def _check_attribute(field: Any, model: type, name: str, attr: Any) -> checks.Error | None:
    """E004: an attribute of that name that is not a method (a property or
    another descriptor the model defines itself is fine)."""
    if _usable(attr) or hasattr(type(attr), "__get__"):
        return None
    return _error(
        field,
        f"{name}() is unavailable: {model.__name__}.{name} is not a method.",
        f"Rename {model.__name__}.{name} ({type(attr).__name__}), or the field '{field.name}'.",
        "E004",
    )


def _generated_methods(model: type) -> dict[str, tuple[str, str]]:
    """The per-field methods Django adds to ``model``: ``{name: (field, why)}``."""
    generated = {}
    for f in model._meta.fields:  # type: ignore[attr-defined]
        if f.choices is not None:
            generated[f"get_{f.name}_display"] = (f.name, "its choices")
        if isinstance(f, models.DateField) and not f.null:
            for direction in ("next", "previous"):
                generated[f"get_{direction}_by_{f.name}"] = (f.name, "a date field")
    return generated
