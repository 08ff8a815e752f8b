"""Sphinx configuration of the documentation site.

    python -m pip install -c .ci/constraints.txt -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The pages are MyST Markdown; the reference pages are generated from the code
(autodoc, and the ``command-help`` directive below for the management commands).
Their Python examples run as tests (conftest.py at the root of the checkout).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
os.environ["COLUMNS"] = "88"  # argparse wraps the commands' help to this width

import django  # noqa: E402

django.setup()

from django.core.management import load_command_class  # noqa: E402
from docutils import nodes  # noqa: E402
from sphinx.application import Sphinx  # noqa: E402
from sphinx.util.docutils import SphinxDirective  # noqa: E402

# Where the site is published. README.md (the package's long description on PyPI, where
# relative links break) links to the pages under this address; tests/test_docs.py checks
# that each of its links is one of these pages.
BASE_URL = "https://belongsto-ext.readthedocs.io/en/latest/"

project = "belongsto-ext"
author = "the belongsto-ext authors"
copyright = "the belongsto-ext authors, BSD-3-Clause"
try:
    release = importlib.metadata.version("belongsto-ext")
except importlib.metadata.PackageNotFoundError:  # building from a checkout not installed
    release = "unknown"
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

# The docstrings are Google style (Args:, Returns:, Raises:).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
# A Protocol's class line would read (*args, **kwargs): signatures go with __init__/__call__.
autodoc_class_signature = "separated"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"belongsto-ext {release}"
html_baseurl = BASE_URL
html_static_path = ["_static"]
html_copy_source = False
pygments_style = "friendly"


class CommandHelp(SphinxDirective):
    """``{command-help} check_counters``: the ``manage.py <name> --help`` text of one of
    belongsto_ext's management commands, from its argument parser."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        command = load_command_class("belongsto_ext", name)
        text = command.create_parser("manage.py", name).format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def skip_new(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """The fields' pages list their ``__init__`` (the options); Django's ``__new__`` is noise."""
    return True if name == "__new__" else None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("command-help", CommandHelp)
    app.connect("autodoc-skip-member", skip_new)
    return {"parallel_read_safe": True}
