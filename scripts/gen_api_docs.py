"""Generate docs/api.md, the API reference, from the docstrings in belongsto_ext.

    python scripts/gen_api_docs.py          # rewrite docs/api.md
    python scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is out of date

The methods a field adds are documented on their Protocols in
``belongsto_ext/types.py``; ``prefetch``/``aprefetch`` on the functions. Docstrings
are Google style: a summary, paragraphs, then ``Args:``, ``Returns:``,
``Raises:`` sections. An async twin whose docstring has no ``Args:`` section
shares its sync twin's arguments, result and errors.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"
sys.path.insert(0, str(ROOT))

from django.db.models import QuerySet  # noqa: E402

from belongsto_ext import batch, fields, types  # noqa: E402

SECTIONS = ("Args", "Returns", "Raises")
TYPE_VARS = re.compile(r"\b(T|T_co|T_contra)\b")


def _spell(annotation: Any) -> str:
    """A type as it is written in code: ``list[str]``, ``QuerySet[T]``, ``None``."""
    if annotation is type(None):
        return "None"
    if isinstance(annotation, typing.TypeVar):
        return annotation.__name__
    if annotation is QuerySet:  # QuerySet[T] is QuerySet itself at run time
        return "QuerySet[T]"
    origin = typing.get_origin(annotation)
    if origin is None:
        return str(annotation.__name__)
    args = ", ".join("..." if a is Ellipsis else _spell(a) for a in typing.get_args(annotation))
    return f"{origin.__name__}[{args}]"


# The aliases of belongsto_ext.types, which would tell a reader nothing, spelled out.
ALIASES = {
    name: " | ".join(_spell(arg) for arg in typing.get_args(getattr(types, name)))
    for name in ("Scope", "KeyValue")
}
FOOTER = (
    "_This document is generated from the docstrings in `belongsto_ext` by "
    "`scripts/gen_api_docs.py`. Do not edit it: change the docstrings, then run "
    "`python scripts/gen_api_docs.py`._"
)


@dataclass
class Doc:
    """A parsed Google-style docstring."""

    text: str
    args: dict[str, str] = field(default_factory=dict)
    returns: str = ""
    raises: list[tuple[str, str]] = field(default_factory=list)


def parse(docstring: str | None) -> Doc:
    lines = inspect.cleandoc(docstring or "").splitlines()
    text: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = text
    for line in lines:
        if line.rstrip(":") in SECTIONS and line.endswith(":"):
            current = sections.setdefault(line[:-1], [])
        else:
            current.append(line)
    doc = Doc("\n".join(text).strip())
    doc.args = dict(_items(sections.get("Args", [])))
    doc.raises = _items(sections.get("Raises", []))
    doc.returns = " ".join(line.strip() for line in sections.get("Returns", [])).strip()
    return doc


def _items(lines: list[str]) -> list[tuple[str, str]]:
    """``name: text`` entries, each continued by more-indented lines."""
    items: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            continue
        if line.startswith("    ") and not line.startswith("        "):
            name, _, text = line.strip().partition(": ")
            items.append((name.lstrip("*"), text))
        else:
            name, text = items[-1]
            items[-1] = (name, f"{text} {line.strip()}")
    return items


def _type(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    text = re.sub(r"\b(scopes|models)\.", "", text)
    # Scope[X] is Scope with T as X; a trailing "| None" is already in it.
    text = re.sub(
        r"\bScope\[(\w+)\]( \| None)?",
        lambda m: ALIASES["Scope"].replace("QuerySet[T]", f"QuerySet[{m[1]}]"),
        text,
    )
    text = re.sub(r"\bKeyValue\b", ALIASES["KeyValue"], text)
    return TYPE_VARS.sub("<Target>", text)


def _md(text: str) -> str:
    """Docstring markup as Markdown: ``code`` and :func:`f` as `code` and `f()`;
    ``<Target>`` and ``<name>`` outside code escaped so they are not read as HTML."""
    text = re.sub(r":func:`([^`]+)`", r"``\1()``", text)
    text = re.sub(r":\w+:`([^`]+)`", r"``\1``", text)
    pieces = re.split(r"(``.+?``)", text)
    return "".join(
        f"`{piece[2:-2]}`" if i % 2 else piece.replace("<", "&lt;").replace(">", "&gt;")
        for i, piece in enumerate(pieces)
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _signature(name: str, sig: inspect.Signature) -> str:
    bare = sig.replace(
        parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    return f"{name}{bare}"


def _row(param: inspect.Parameter, description: str) -> str:
    if param.kind is param.VAR_KEYWORD:
        name = f"**{param.name}"
    elif param.default is not param.empty:
        name = f"[{param.name}={param.default!r}]"
    else:
        name = param.name
    kind = "Any" if param.kind is param.VAR_KEYWORD else _type(param.annotation)
    return f"| {name} | `{_cell(kind)}` | {_cell(_md(description))} |"


def section(
    name: str, func: Callable[..., Any], link: str, shared: dict[str, Doc], glossary: dict[str, str]
) -> str:
    """One method's section: anchor, signature and return type, text, tables."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    sig = sig.replace(parameters=params)
    doc = parse(func.__doc__)
    if not doc.args and params:
        twin = shared.get(name.removeprefix("a"))
        if twin is not None:
            doc.args, doc.returns, doc.raises = twin.args, twin.returns, twin.raises
    unknown = set(doc.args) - {p.name for p in params}
    if unknown:
        raise ValueError(f"{name}: Args documents {sorted(unknown)}, not in the signature")
    shared[name] = doc
    returns = name if inspect.isclass(func) else _type(sig.return_annotation)
    if inspect.iscoroutinefunction(func):
        returns = f"Awaitable[{returns}]"
    anchor = re.sub(r"[^a-z]+", "_", name.lower()).strip("_")
    out = [
        f'<a name="{anchor}"></a>',
        f"## `{_signature(name, sig)}` -> `{returns}`",
        link,
        "",
        _md(doc.text),
        "",
    ]
    if params:
        out += ["**Params:**", "", "| Name | Type | Description |", "| ---- | ---- | ----------- |"]
        for param in params:
            description = doc.args.get(param.name) or glossary.get(param.name, "")
            out.append(_row(param, description))
        out.append("")
    if doc.returns:
        out += [f"**Returns:** `{returns}`: {_md(doc.returns)}", ""]
    if doc.raises:
        out += ["**Raises:**", ""]
        out += [f"- `{exc}`: {_md(text)}" for exc, text in doc.raises]
        out.append("")
    out += ["***", ""]
    return "\n".join(out)


def render() -> str:
    """The whole of docs/api.md."""
    shared: dict[str, Doc] = {}
    parts = [
        '<a name="belongsto"></a>',
        "# BelongsToField, BelongsToOneField",
        "[View code](../belongsto_ext/fields.py)",
        "A `ForeignKey` (`BelongsToField`) or `OneToOneField` (`BelongsToOneField`) that adds "
        "Sequelize's BelongsTo association methods to its model.",
        "",
        "In the API reference below, replace `<name>` with the name of your field and "
        "`<Target>` with the model it points at: for `author = BelongsToField(Author, ...)` "
        "on `Book`, the getter is `book.get_author()` and returns an `Author` or `None`.",
        "",
        "",
        "***",
        "",
    ]
    for spec in fields.METHODS:
        name = spec.prefix + "<name>" + spec.suffix
        link = f"[View code](../belongsto_ext/types.py) · type: `{_typed(spec, '<Target>')}`"
        parts.append(section(name, spec.protocol.__call__, link, shared, {}))
    glossary = shared["get_<name>"].args
    for func in (batch.prefetch, batch.aprefetch, batch.ScopedPrefetch):
        link = "[View code](../belongsto_ext/batch.py)"
        parts.append(section(func.__name__, func, link, shared, glossary))
    parts += [
        '<a name="static_types"></a>',
        "## Static types",
        "[View code](../belongsto_ext/types.py)",
        "Type checkers cannot see methods added at class creation: declare them on the "
        "model with these generic Protocols, exported from `belongsto_ext`.",
        "",
        "```python",
        "if TYPE_CHECKING:",
    ]
    for spec in fields.METHODS:
        parts.append(f"    {spec.prefix}author{spec.suffix}: {_typed(spec, 'Author')}")
    parts += ["```", "", "", "***", "", FOOTER, ""]
    return "\n".join(parts)


def _typed(spec: fields.MethodSpec, target: str) -> str:
    """The Protocol as a declaration names it: generic ones take the target."""
    generic = getattr(spec.protocol, "__parameters__", ())
    return f"{spec.protocol.__name__}[{target}]" if generic else spec.protocol.__name__


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run python scripts/gen_api_docs.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
