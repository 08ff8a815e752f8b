"""docs/api.md is generated from the docstrings: it must match them."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from belongsto_ext import fields

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gen_api_docs.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_api_docs", module)
    spec.loader.exec_module(module)
    return module


def test_api_reference_matches_the_docstrings() -> None:
    generator = load_generator()
    assert generator.OUTPUT.read_text() == generator.render(), (
        "docs/api.md differs from the docstrings: run python scripts/gen_api_docs.py"
    )


def test_every_method_and_parameter_is_documented() -> None:
    """Sync methods describe each parameter; async twins share their signature."""
    generator = load_generator()
    text = generator.render()
    signatures = {}
    for spec in fields.METHODS:
        name = spec.prefix + "<name>" + spec.suffix
        protocol = spec.protocol
        assert f"## `{name}(" in text
        signature = inspect.signature(protocol.__call__)
        signatures[name] = signature
        if spec.prefix.startswith("a"):
            assert str(signature) == str(signatures[name[1:]])
        else:
            documented = generator.parse(protocol.__call__.__doc__).args
            assert list(documented) == [p for p in signature.parameters if p != "self"]
            assert all(documented.values())
    for name in ("prefetch", "aprefetch"):
        assert f"## `{name}(instances, name, scope=None, using=None)`" in text


def test_injected_methods_name_the_protocol_that_documents_them() -> None:
    """help(book.get_author) shows a summary and where the full reference is."""
    from tests.models import Book

    for spec in fields.METHODS:
        for name in ("author", "publisher"):
            method_name = spec.prefix + name + spec.suffix
            method = getattr(Book, method_name)
            assert method.__name__ == method_name
            assert method.__qualname__ == f"Book.{method_name}"
            assert f"belongsto_ext.types.{spec.protocol.__name__}" in method.__doc__
    assert Book.get_author.__doc__.startswith("Return the related object in ``scope``, or None.")
