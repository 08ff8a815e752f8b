"""The documentation against the code: what the API reference and the checks page must
cover, the README's size and links, and the injected methods' pointers to their Protocols.

The examples themselves run elsewhere: conftest.py (Sybil) runs every Python example of
README.md and docs/ against the demo app. The site is built by Sphinx with warnings as
errors (.ci/run), which catches a broken cross-reference or a page left out of the index.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import belongsto_ext
from belongsto_ext import types
from belongsto_ext.methods import ANY_METHODS, METHODS, MethodSpec

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def base_url() -> str:
    """docs/conf.py's BASE_URL (read, not imported: importing conf.py sets Django up)."""
    tree = ast.parse((DOCS / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "BASE_URL"
        ]:
            return str(ast.literal_eval(node.value))
    raise AssertionError("docs/conf.py defines no BASE_URL")


def documented_args(docstring: str | None) -> list[str]:
    """The names under a Google-style docstring's ``Args:`` section."""
    lines = inspect.cleandoc(docstring or "").splitlines()
    if "Args:" not in lines:
        return []
    names = []
    for line in lines[lines.index("Args:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section
        match = re.match(r"    (\*{0,2}\w+):", line)
        if match:
            names.append(match[1])
    return names


# ------------------------------------------------------------------ the README


def test_the_readme_is_short() -> None:
    assert README.stat().st_size <= 8 * 1024


def test_the_readme_starts_with_the_quick_start_of_a_checkout() -> None:
    sections = re.findall(r"^## (.+)$", README.read_text(), re.M)
    assert sections[0] == "Quick start"


def test_every_readme_link_is_a_page_of_the_site() -> None:
    """The README is PyPI's long description, where relative links break: each link goes to
    a page under docs/conf.py's BASE_URL, and that page exists."""
    text = README.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r"^\[[^\]]+\]: (\S+)$", text, re.M)
    assert links
    base = base_url()
    for link in links:
        assert link.startswith(base), f"{link} is not under {base}"
        page = link[len(base) :].split("#")[0]
        assert page.endswith(".html"), link
        assert (DOCS / page.replace(".html", ".md")).exists(), f"{link}: no such page"


# ------------------------------------------------------------------ the reference


def test_the_reference_documents_every_public_name() -> None:
    """docs/reference.md has an autodoc directive for each name of belongsto_ext.__all__
    (the Protocols and aliases under belongsto_ext.types, where they are defined)."""
    text = (DOCS / "reference.md").read_text()
    documented = set(re.findall(r"^\.\. auto\w+:: belongsto_ext\.(?:types\.)?(\w+)$", text, re.M))
    assert set(belongsto_ext.__all__) <= documented


def test_the_options_page_lists_every_option() -> None:
    """Each keyword-only option of the fields' __init__ is on docs/options.md."""
    text = (DOCS / "options.md").read_text()
    for field in (belongsto_ext.BelongsToField, belongsto_ext.BelongsToAnyField):
        options = [
            p.name
            for p in inspect.signature(field.__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY
        ]
        assert options, field
        for option in options:
            assert f"| `{option}=` |" in text, f"{field.__name__}'s {option}= is not documented"


@pytest.mark.parametrize(
    "specs",
    [METHODS, ANY_METHODS],
    ids=["BelongsToField", "BelongsToAnyField"],
)
def test_every_method_documents_its_parameters(specs: tuple[MethodSpec, ...]) -> None:
    """A sync method's Protocol lists each parameter under ``Args:``; an async twin has the
    signature of its sync twin, whose docstring it refers to."""
    signatures = {}
    for spec in specs:
        call = spec.protocol.__call__
        signature = inspect.signature(call)
        name = spec.prefix + "<name>" + spec.suffix
        signatures[name] = signature
        parameters = [p for p in signature.parameters if p != "self"]
        if name.startswith("a") and name[1:] in signatures:
            assert str(signature) == str(signatures[name[1:]]), name
        else:
            kinds = {p.name: p.kind for p in signature.parameters.values()}
            stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
            wanted = [stars.get(kinds[p], "") + p for p in parameters]
            assert documented_args(call.__doc__) == wanted, f"{spec.protocol.__name__}: Args"


def test_the_protocols_are_the_ones_the_methods_name() -> None:
    assert {spec.protocol for spec in (*METHODS, *ANY_METHODS)} <= {
        getattr(types, name) for name in types.__all__
    }


# ------------------------------------------------------------------ the checks page


def check_ids_in_the_code() -> set[str]:
    """Every ``belongsto_ext.E0nn``/``W0nn`` the package can report: ids written out, and
    the bare ``"E0nn"`` codes its checks prefix with ``belongsto_ext.``."""
    ids = set()
    for path in (ROOT / "belongsto_ext").rglob("*.py"):
        text = path.read_text()
        ids |= set(re.findall(r"belongsto_ext\.([EW]\d{3})\b", text))
        ids |= set(re.findall(r"[\"']([EW]\d{3})[\"']", text))
    return ids


def test_the_checks_page_has_every_check_and_no_other() -> None:
    text = (DOCS / "checks.md").read_text()
    on_the_page = set(re.findall(r"^### belongsto_ext\.([EW]\d{3})$", text, re.M))
    in_the_code = check_ids_in_the_code()
    assert in_the_code >= {f"E{n:03}" for n in range(1, 15)} | {f"W{n:03}" for n in range(1, 5)}
    assert on_the_page == in_the_code


# ------------------------------------------------------------------ help()


def test_injected_methods_name_the_protocol_that_documents_them() -> None:
    """help(book.get_author) shows a summary and where the full reference is."""
    from tests.models import Book

    for spec in METHODS:
        for name in ("author", "publisher"):
            method_name = spec.prefix + name + spec.suffix
            method = getattr(Book, method_name)
            assert method.__name__ == method_name
            assert method.__qualname__ == f"Book.{method_name}"
            assert f"belongsto_ext.types.{spec.protocol.__name__}" in method.__doc__
    assert Book.get_author.__doc__.startswith("Return the related object in ``scope``, or None.")
