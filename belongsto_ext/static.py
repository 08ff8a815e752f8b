"""Whether a manager is *static*: its ``all()`` builds the same query in every
context, so that what it selects may be decided once (``scopes.py``).

Proven from the code, never assumed: a manager that reads a contextvar, a
thread-local, the request, a setting or an attribute is not static.
"""

from __future__ import annotations

import builtins
import dis
import inspect
from collections.abc import Iterator
from typing import Any

from django.db import models
from django.db.models.functions.datetime import TimezoneMixin
from django.db.models.manager import BaseManager

from . import _compat

__all__ = ["is_static"]

# QuerySet methods a static get_queryset() may chain: they filter, order or load.
_PURE_METHODS = frozenset(
    {"all", "filter", "exclude", "order_by", "select_related", "only", "defer", "distinct"}
)
# What a class statement may put in any class's __dict__ (varies by Python version).
_CLASS_BOILERPLATE = frozenset(
    {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__"}
    | {"__annotate__", "__firstlineno__", "__static_attributes__", "__orig_bases__"}
    | {"__parameters__", "__classcell__"}
)
_QUERYSET_OWN = frozenset(vars(models.QuerySet)) - _CLASS_BOILERPLATE
# Instructions of no consequence here, and those that only call or combine values.
_SKIPPED_OPS = frozenset(
    {"RESUME", "COPY_FREE_VARS", "MAKE_CELL", "PRECALL", "PUSH_NULL", "NOP", "CACHE"}
    | {"EXTENDED_ARG", "KW_NAMES"}
)
_CALL_OPS = frozenset({"CALL", "CALL_KW", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_METHOD"})
_BUILD_OPS = frozenset(
    {"BUILD_TUPLE", "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP"}
    | {"LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE", "DICT_MERGE", "LIST_TO_TUPLE"}
    | {"UNARY_INVERT", "BINARY_OR", "BINARY_AND"}
)
_LITERALS = (type(None), bool, int, float, complex, str, bytes)


def is_static(manager: Any) -> bool:
    """Whether ``manager.all()`` builds the same query in every context, so that
    what it selects may be decided once.

    Proven from the code, never assumed: the manager's ``all()`` and its QuerySet
    class are Django's own (a QuerySet subclass may add methods, not override
    any), and every ``get_queryset()`` above Django's is ``super().get_queryset()``
    followed by ``filter()``, ``exclude()``, ``order_by()`` ... with literals,
    ``Q()`` and ``F()`` as arguments; nor may the query read the current time
    zone (``__date``, ``__year`` ...). A manager that reads a contextvar, a
    thread-local, the request, a setting or an attribute is not static.
    """
    kind = type(manager)
    if (
        not isinstance(manager, BaseManager)
        or getattr(kind, "all", None) is not BaseManager.all
        or not _django_queryset(getattr(manager, "_queryset_class", None))
    ):
        return False
    mro = kind.__mro__
    for owner in mro[: mro.index(BaseManager)]:
        method = vars(owner).get("get_queryset")
        if method is not None and not _super_then_filters(method, owner):
            return False
    return not any(
        isinstance(node, TimezoneMixin) for node in _expressions(_compat.where_nodes(manager.all()))
    )


def _django_queryset(queryset_class: Any) -> bool:
    """Whether ``queryset_class`` builds and chains QuerySets as Django's own:
    ``QuerySet``, or a subclass that overrides nothing of it."""
    if not (isinstance(queryset_class, type) and issubclass(queryset_class, models.QuerySet)):
        return False
    mro = queryset_class.__mro__
    return not any(_QUERYSET_OWN & vars(kind).keys() for kind in mro[: mro.index(models.QuerySet)])


def _super_then_filters(method: Any, owner: type) -> bool:
    """Whether ``method``, the ``get_queryset()`` of ``owner``, is
    ``return super().get_queryset()`` followed by calls of :data:`_PURE_METHODS`
    with literals, ``Q()`` and ``F()`` as arguments; read from its bytecode."""
    if not inspect.isfunction(method):
        return False
    code = method.__code__
    if (
        code.co_argcount != 1
        or code.co_nlocals != 1
        or code.co_kwonlyargcount
        or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
        or code.co_freevars != ("__class__",)
        or method.__closure__ is None
        or method.__closure__[0].cell_contents is not owner
        or method.__globals__.get("super", builtins.super) is not builtins.super
    ):
        return False
    ops = [_op(i) for i in dis.get_instructions(method) if i.opname not in _SKIPPED_OPS]
    # super().get_queryset(): Python 3.12+ loads the method with LOAD_SUPER_ATTR.
    call = ("CALL", 0)
    super_of_self = [("LOAD_DEREF", "__class__"), ("LOAD_FAST", code.co_varnames[0])]
    for head in (
        [("LOAD_GLOBAL", "super"), *super_of_self, ("LOAD_SUPER_ATTR", "get_queryset"), call],
        [("LOAD_GLOBAL", "super"), call, ("LOAD_ATTR", "get_queryset"), call],
    ):
        if ops[: len(head)] == head:
            body = ops[len(head) :]
            break
    else:
        return False
    if not body or body[-1] != ("RETURN_VALUE", None):
        return False
    names = method.__globals__
    after_module = False  # the previous op loaded django.db.models
    for opname, arg in body[:-1]:
        value = None
        if opname == "LOAD_ATTR":
            ok = arg in (("Q", "F") if after_module else _PURE_METHODS)
        elif opname == "LOAD_GLOBAL":
            value = names.get(arg, getattr(builtins, arg, None))
            ok = value is models.Q or value is models.F or value is models
        elif opname == "LOAD_CONST":
            ok = _literal(arg)
        elif opname == "BINARY_OP":
            ok = arg in ("|", "&")
        else:
            ok = opname == "CALL" or opname in _BUILD_OPS
        if not ok:
            return False
        after_module = value is models
    return True


def _op(instruction: dis.Instruction) -> tuple[str, Any]:
    """An instruction as (name, argument), alike on Python 3.10 to 3.13."""
    name, arg = instruction.opname, instruction.argval
    if name in _CALL_OPS:
        return "CALL", arg
    if name == "LOAD_METHOD":
        return "LOAD_ATTR", arg
    if name == "BINARY_OP":
        return name, instruction.argrepr
    return name, arg


def _literal(value: Any) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_literal(item) for item in value)
    return isinstance(value, _LITERALS)


def _expressions(node: Any) -> Iterator[Any]:
    """``node`` (a WhereNode) and every node and expression under it."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        children = getattr(node, "children", None)
        if isinstance(children, list):
            stack.extend(children)
        elif hasattr(node, "get_source_expressions"):
            stack.extend(e for e in node.get_source_expressions() if e is not None)
