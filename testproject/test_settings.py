"""Settings for the test suite: the demo project's, plus the test apps, the
admin, and the third-party libraries the suite combines ``belongsto_ext`` with
(django-safedelete, django-polymorphic, Django REST framework, django-reversion,
django-simple-history; django-model-utils needs no app).

``BELONGSTO_STANDBY_URL`` (a PostgreSQL hot standby of the ``DATABASE_URL``
primary, as ``.ci/postgres`` starts) adds a ``standby`` alias for the
read-your-own-writes tests in ``tests/test_standby.py``.

``BELONGSTO_PGBOUNCER=1`` says both URLs lead to PgBouncers in transaction-pooling
mode (``.ci/postgres pgbouncer``, the ``postgres-pgbouncer`` leg of ``.ci/run``) and
applies the settings Django needs there.
"""

from __future__ import annotations

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import DATABASES, INSTALLED_APPS, TEMPLATES, database_from_url

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    *INSTALLED_APPS,
    "safedelete",
    "polymorphic",
    "rest_framework",
    "reversion",
    "simple_history",
    "tests",
    "tests.ecosystem",
    "tests.anyeco",
    "tests.scoped",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        **TEMPLATES[0],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

ROOT_URLCONF = "tests.urls"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # default's own database, with server-side parameter binding: at most
    # 65,535 parameters per statement (tests/test_batch.py).
    DATABASES["bound"] = {
        **DATABASES["default"],
        "OPTIONS": {"server_side_binding": True},
        "TEST": {"MIRROR": "default"},
    }

if os.environ.get("BELONGSTO_STANDBY_URL"):
    # A real streaming standby of default: under test it opens default's test
    # database (TEST MIRROR) on the standby server.
    DATABASES["standby"] = {
        **database_from_url(os.environ["BELONGSTO_STANDBY_URL"]),
        "TEST": {"MIRROR": "default"},
    }

if (
    os.environ.get("BELONGSTO_PGBOUNCER")
    and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
):
    # Every alias goes through a PgBouncer in transaction-pooling mode: each transaction
    # (each statement, in autocommit) may run on another server connection. As Django's
    # docs say ("Transaction pooling and server-side cursors"), server-side cursors must
    # be off: iterator() outside a transaction DECLAREs a WITH HOLD cursor on one server
    # connection and would FETCH from another. Nothing else changes: Django leaves
    # prepared statements off (psycopg's prepare_threshold None), and a connection it
    # keeps open (CONN_MAX_AGE) is a client of PgBouncer, which lends it a server
    # connection only for a transaction.
    # `bound` stays behind PgBouncer too: with server-side binding psycopg sends each
    # statement as an unnamed Parse/Bind/Execute/Sync in one round trip, which transaction
    # pooling passes through whole (tests/test_pgbouncer.py checks it). Named prepared
    # statements would break (PgBouncer 1.18 cannot track them), but they are off; the
    # 65,535-parameter limit is libpq's, checked before anything is sent.
    for settings_dict in DATABASES.values():
        settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
