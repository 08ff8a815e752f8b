"""Settings for the belongsto_ext demo project (``manage.py demo``, ``manage.py bench``).

The test suite runs on ``testproject.test_settings``, which adds the test apps
and the third-party libraries they combine ``belongsto_ext`` with.

The database comes from ``DATABASE_URL`` (``sqlite:///path``, ``sqlite://:memory:``
or ``postgres://user:password@host:port/name``); without it, SQLite in
``db.sqlite3`` beside manage.py, so the quick start needs no setup.
Three aliases always exist (see ``database_aliases``); only ``default`` is
used unless a test routes queries elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "belongsto-ext-test-project-not-secret"
DEBUG = True
ALLOWED_HOSTS: list[str] = ["localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "belongsto_ext",
    "testproject.library",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]


def database_from_url(url: str) -> dict[str, object]:
    """A DATABASES entry from a ``DATABASE_URL``-style string."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        name = parts.netloc + unquote(parts.path)
        if name.startswith("/") and parts.netloc == "":
            name = name[1:] if name.startswith("//") else name
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name or ":memory:"}
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} in {url!r}")


def database_aliases(primary: dict[str, object]) -> dict[str, dict[str, object]]:
    """``default``, its read ``replica`` and a separate ``other`` database.

    ``replica`` opens the same database as ``default`` (in tests a ``TEST``
    mirror of it, as a streaming replica would be); ``other`` is a database of
    its own (``<name>_other``, or its own SQLite file). No router is installed
    here: the multi-database tests enable ``testproject.routers`` themselves.
    """
    name = str(primary["NAME"])
    if primary["ENGINE"] != "django.db.backends.sqlite3":
        other_name = f"{name}_other"
    elif name == ":memory:" or name.startswith("file:"):
        other_name = name  # every in-memory connection is a database of its own
    else:
        path = Path(name)
        other_name = str(path.with_name(f"{path.stem}-other{path.suffix}"))
    return {
        "default": primary,
        "replica": {**primary, "TEST": {"MIRROR": "default"}},
        "other": {**primary, "NAME": other_name},
    }


DATABASES = database_aliases(
    database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
)
