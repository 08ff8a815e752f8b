"""The examples of README.md and docs/, run as tests by Sybil against the demo app
(testproject/library), on SQLite: ``python -m pytest README.md docs`` (setup.cfg's
testpaths include both, so ``python -m pytest`` runs them too).

How a code block is run:

- A ``python`` block that starts with ``>>>`` is a doctest. A ``# 1 query`` or
  ``# 3 queries`` comment on a ``>>>`` line also checks how many queries that line
  made. An exception is written as Python prints it, with the bare class name
  (``InvalidScope: ...``), whatever module the class lives in.
- Any other ``python`` block runs statement by statement, and a statement with such a
  comment has its queries counted. ``await`` works at the top level of a block. Model
  classes a block declares are built in an app registry of their own and do not
  replace the demo's ``Book`` or ``Author`` for the examples after it.
- A ``console`` block whose first line is ``$ python manage.py demo`` is an excerpt of
  that command's output: its parts (separated by lines of ``...``) must appear in the
  output, in order; ``...`` inside a line stands for any text. Timestamps and content
  type ids are not compared.
- ``% skip: next "reason"`` (MyST) or ``<!-- skip: next "reason" -->`` (the README)
  skips the next example; ``% invisible-code-block: python`` runs code the page does
  not show.

Each document is one test (``README.md::examples``): its examples run in order, in
autocommit (as in a view without ``ATOMIC_REQUESTS``), on the test database (transactional,
flushed afterwards), starting from the demo's sample data with ids from 1 (``manage.py demo``
makes the same rows). Its namespace starts with ``django``, ``models``, ``belongsto_ext``
and the demo's models (``Author``, ``Book``, ``Comment``, ``Loan``, ``Publisher``,
``Review``); model classes it declares are built in an app registry of their own
(``isolate_apps``), in the test app. On a database other than SQLite the examples are
skipped.
"""

from __future__ import annotations

import ast
import doctest
import io
import re
import sys
import traceback
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from unittest import SkipTest

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.doctest import DocTestEvaluator, OutputChecker
from sybil.example import SybilFailure
from sybil.integration.pytest import SybilItem
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.myst import CodeBlockParser, PythonCodeBlockParser, SkipParser

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
COUNT = re.compile(r"#\s*(\d+) quer(?:y|ies)\b")
LIBRARY = ("comment", "review", "loan", "book", "author", "publisher")  # in deletion order
DEMO_MODELS = ("Author", "Book", "Comment", "Loan", "Publisher", "Review")


# ------------------------------------------------------------------ the database


def reset_library() -> None:
    """Empty the demo app's tables and restart their ids at 1."""
    from django.db import connection

    from testproject.library.models import Author, Book, Comment, Loan, Publisher, Review

    Comment.objects.all().delete()
    Review.objects.all().delete()
    Loan.objects.all().delete()
    Book.objects.all().delete()
    Author.all_objects.all().delete()
    Publisher.objects.all().delete()
    tables = [f"library_{name}" for name in LIBRARY]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM sqlite_sequence WHERE name IN ({', '.join(['%s'] * len(tables))})",
            tables,
        )


def demo_command(stdout: io.StringIO) -> Any:
    from testproject.library.management.commands.demo import Command

    return Command(stdout=stdout, no_color=True)


def setup_namespace(namespace: dict[str, Any]) -> None:
    import django
    from django.db import models

    import belongsto_ext
    from testproject.library.models import Author, Book, Comment, Loan, Publisher, Review

    # Classes a document declares belong to the test app ("tests"), in the registry of
    # their own that DocumentItem opens (isolate_apps).
    namespace["__name__"] = "tests.docs_examples"
    namespace.update(
        django=django,
        models=models,
        belongsto_ext=belongsto_ext,
        Author=Author,
        Book=Book,
        Comment=Comment,
        Loan=Loan,
        Publisher=Publisher,
        Review=Review,
    )


# ------------------------------------------------------------------ counting queries


class Queries:
    """The queries of a block of code on the default database."""

    def __enter__(self) -> Queries:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.context = CaptureQueriesContext(connection)
        self.context.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.context.__exit__(*exc_info)

    def differ(self, want: int | None, what: str) -> str:
        """A failure message if there were not ``want`` queries, else ``""``."""
        sql = [query["sql"] for query in self.context.captured_queries]
        if want is None or len(sql) == want:
            return ""
        listed = "".join(f"\n    {statement}" for statement in sql)
        made = f"{len(sql)} {'query' if len(sql) == 1 else 'queries'}"
        return f"{what.strip()}\nmade {made}, not {want}:{listed}\n"


def wanted(source: str, first: int = 1, last: int | None = None) -> int | None:
    """The query count a ``# N queries`` comment in lines first..last of ``source`` states."""
    counts = []
    for number, line in enumerate(source.splitlines(), 1):
        if first <= number <= (last or number) and "#" in line:
            counts += [int(m[1]) for m in COUNT.finditer(line[line.index("#") :])]
    if len(counts) > 1:
        raise ValueError(f"more than one query count in: {source!r}")
    return counts[0] if counts else None


# ------------------------------------------------------------------ doctests


class Checker(OutputChecker):
    """Sybil's checker, taking ``InvalidScope: ...`` for ``belongsto_ext.scopes.InvalidScope:
    ...``: doctest compares exceptions under their module's name, which the docs leave out."""

    @staticmethod
    def bare(want: str, got: str) -> str:
        qualified = re.match(r"((?:\w+\.)+)(\w+)(?=:|\s|$)", got)
        if qualified and re.match(rf"{qualified[2]}\b", want):
            return got[len(qualified[1]) :]
        return got

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return super().check_output(want, self.bare(want, got), optionflags)

    def output_difference(self, example: doctest.Example, got: str, optionflags: int) -> str:
        return super().output_difference(example, self.bare(example.want, got), optionflags)


class CountingDocTestEvaluator(DocTestEvaluator):
    """A doctest example whose source says ``# N queries`` must make N queries."""

    def __init__(self, optionflags: int) -> None:
        super().__init__(optionflags)
        self.runner._checker = Checker()

    def __call__(self, example: Example) -> str:
        with Queries() as queries:
            failure = super().__call__(example)
        return (
            failure
            or queries.differ(wanted(example.parsed.source), example.parsed.source)
            or demo_models_kept(example)
        )


def demo_models_kept(example: Example) -> str:
    """A doctest that declares a model named as one of the demo's replaces it in the
    namespace, and later examples (install_triggers(Review), ...) would act on another
    table: name declared models otherwise."""
    from testproject.library import models

    replaced = [
        name for name in DEMO_MODELS if example.namespace.get(name) is not getattr(models, name)
    ]
    return f"{example.parsed.source}replaced the demo's {replaced}\n" if replaced else ""


# ------------------------------------------------------------------ other python blocks


def run_block(example: Example) -> str | None:
    """Run a block statement by statement, counting queries where a comment says how many."""
    from django.apps import apps
    from django.db.models.base import ModelBase
    from django.test.utils import isolate_apps

    # The block runs in a module of its own (libraries such as strawberry look a class's
    # module up in sys.modules), with a registry of its own for the models it declares.
    module = types.ModuleType(example.namespace["__name__"])
    module.__dict__.update(example.namespace)
    sys.modules[module.__name__] = module
    with isolate_apps("tests"):
        failure = _run_statements(example, module.__dict__)
    if failure:
        return failure
    for name, value in module.__dict__.items():
        # A model the block declares lives in the block's own registry: the demo's model
        # of that name stays the namespace's.
        if name != "__builtins__" and not (
            isinstance(value, ModelBase) and value._meta.apps is not apps
        ):
            example.namespace[name] = value
    return None


def _run_statements(example: Example, scratch: dict[str, Any]) -> str | None:
    from asgiref.sync import async_to_sync

    source = str(example.parsed)
    offset = example.line + example.parsed.line_offset
    for statement in ast.parse(source).body:
        text = ast.get_source_segment(source, statement) or ""
        want = wanted(source, statement.lineno, statement.end_lineno)
        module = ast.Module(body=[statement], type_ignores=[])
        ast.increment_lineno(module, offset)  # tracebacks name the document's lines
        code = compile(module, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        with Queries() as queries:
            result = eval(code, scratch)  # exec, or a coroutine for a block with await
            if result is not None:
                async_to_sync(_awaited)(result)
        failure = queries.differ(want, text)
        if failure:
            return failure
    return None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class PythonParser(PythonCodeBlockParser):
    def __init__(self) -> None:
        super().__init__(doctest_optionflags=FLAGS)
        self.doctest_parser = DocTestStringParser(CountingDocTestEvaluator(FLAGS))
        self.codeblock_parser = self.codeblock_parser_class("python", run_block)


# ------------------------------------------------------------------ the demo's output

DEMO = "$ python manage.py demo"
# Compared loosely: when a row was written, content type ids (they depend on the apps
# installed: the test project has more than the demo's), and what Django 6.1 writes
# otherwise than 5.2 on SQLite: a boolean condition ("bestseller" = 1, 5.2 "bestseller")
# and a subquery's alias ("U0", 5.2 U0).
LOOSE = [
    (re.compile(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?'"), "'<time>'"),
    (re.compile(r'("content_type_id" = )\d+'), r"\1<ct>"),
    (re.compile(r'("bestseller") = 1\b'), r"\1"),
    (re.compile(r'"(U\d+)"'), r"\1"),
]


def loosen(line: str) -> str:
    for pattern, replacement in LOOSE:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def check_demo_excerpt(example: Example) -> str | None:
    """Each part of the excerpt appears in the demo's output, in order."""
    from django.core.management import call_command

    namespace = example.namespace
    if "_demo_output" not in namespace:
        reset_library()
        out = io.StringIO()
        call_command("demo", stdout=out, no_color=True)
        namespace["_demo_output"] = [loosen(line) for line in out.getvalue().splitlines()]
    output: list[str] = namespace["_demo_output"]
    lines = [loosen(line) for line in str(example.parsed).splitlines()[1:]]
    parts: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == "...":
            parts.append([])
        elif line:
            parts[-1].append(line)
    start = 0
    for part in filter(None, parts):
        patterns = [re.compile(".*".join(map(re.escape, line.split("...")))) for line in part]
        for i in range(start, len(output) - len(part) + 1):
            if all(p.fullmatch(output[i + j]) for j, p in enumerate(patterns)):
                start = i + len(part)
                break
        else:
            shown = "\n".join(part)
            return f"not in the output of manage.py demo (after line {start}):\n{shown}\n"
    return None


class DemoOutputParser(CodeBlockParser):
    """``console`` blocks that start with ``$ python manage.py demo``."""

    def __init__(self) -> None:
        super().__init__("console", check_demo_excerpt)

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in super().__call__(document):
            if str(region.parsed).startswith(DEMO + "\n"):
                yield region


# ------------------------------------------------------------------ collecting

SYBIL = Sybil(
    parsers=[PythonParser(), DemoOutputParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    excludes=["docs/_build/*"],
)


class DocumentItem(pytest.Item):
    """Every example of one document, in order, as one test: they share the document's
    namespace and its database rows (a test per example would have pytest-django roll
    the rows back, or flush them, between two examples)."""

    # Sybil's own way of giving an item fixtures, which follows pytest's releases.
    request_fixtures = SybilItem.request_fixtures

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A transactional test database (autocommit, as in a view), with sequences
        # reset so that the demo's rows get ids from 1; flushed afterwards. The replica
        # (a test mirror of default) is for docs/databases.md.
        self.add_marker(
            pytest.mark.django_db(
                transaction=True, reset_sequences=True, databases=["default", "replica"]
            )
        )
        self.request_fixtures(["django_db_reset_sequences"])
        self.examples = 0

    def setup(self) -> None:
        from django.db import connection

        if connection.vendor != "sqlite":  # before the test database is flushed for nothing
            pytest.skip("the examples of README.md and docs/ run on SQLite")
        self._request._fillfixtures()

    def runtest(self) -> None:
        from django.test.utils import isolate_apps

        document = SYBIL.parse(self.path)
        setup_namespace(document.namespace)
        with isolate_apps("tests"):
            demo_command(io.StringIO()).create_sample_data()
            for example in document.examples():
                try:
                    example.evaluate()
                except SkipTest:
                    continue
                except SybilFailure:
                    raise
                except Exception as exc:
                    raise ExampleError(example) from exc
                self.examples += 1
        sys.modules.pop(document.namespace["__name__"], None)  # run_block's module
        self.user_properties.append(("examples", self.examples))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, SybilFailure):
            return str(error)
        if isinstance(error, ExampleError) and error.__cause__ is not None:
            # The example's own lines, then the library's last frames, and the exception.
            cause = error.__cause__
            frames = traceback.extract_tb(cause.__traceback__)
            ours = [f for f in frames if f.filename == error.path]
            shown = ours + [f for f in frames[-3:] if f not in ours]
            return "".join(
                [
                    f"{error}:\n",
                    *traceback.format_list(shown),
                    *traceback.format_exception_only(cause),
                ]
            )
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"the examples of {self.path.name}"


class ExampleError(Exception):
    def __init__(self, example: Example) -> None:
        super().__init__(f"The example at {example.path}, line {example.line}, raised")
        self.path = example.path


class DocumentFile(pytest.File):
    def collect(self) -> Iterator[DocumentItem]:
        if next(SYBIL.parse(self.path).examples(), None) is not None:  # a page without any: no test
            yield DocumentItem.from_parent(self, name="examples")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ran = [
        dict(report.user_properties).get("examples", 0)
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call" and report.nodeid.endswith("::examples")
    ]
    if ran:
        terminalreporter.write_line(f"{sum(ran)} examples ran in {len(ran)} documents (Sybil)")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> DocumentFile | None:
    if SYBIL.should_parse(file_path):
        return DocumentFile.from_parent(parent, path=file_path)
    return None
