"""The suite's marks, defined once: skips for what a run's database, Django,
Python or installed libraries lack, and the parametrisations several modules
share. A skip names what is missing in this run, so that a skipped test says why."""

from __future__ import annotations

import os
import sys

import django
import pytest
from django.db import connection

from tests.scoped.models import PERMANENT_PATCHES

# ------------------------------------------------------------- Django

needs_fetch_modes = pytest.mark.skipif(
    django.VERSION < (6, 1),
    reason="QuerySet.fetch_mode() (FETCH_PEERS, FETCH_RAISE) is new in Django 6.1",
)

# ------------------------------------------------------------ database

on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason=f"lowers SQLite's live parameter limit; this run uses {connection.vendor}",
)
needs_setlimit = pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="sqlite3.Connection.setlimit()/getlimit() are new in Python 3.11",
)
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=(
        "server_side_binding (the 'bound' alias, at most 65,535 parameters a statement) "
        f"is PostgreSQL's; this run uses {connection.vendor}"
    ),
)
needs_concurrent_writers = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=f"concurrent writers need PostgreSQL; this run uses {connection.vendor}, "
    "which lets one connection write at a time",
)

# Through PgBouncer in transaction-pooling mode (the CI leg that sets BELONGSTO_PGBOUNCER),
# each transaction may run on another server connection: a session setting (the isolation
# level, deadlock_timeout) would not hold for the thread, and would leak to other clients.
THROUGH_PGBOUNCER = bool(os.environ.get("BELONGSTO_PGBOUNCER"))
needs_a_session = pytest.mark.skipif(
    THROUGH_PGBOUNCER,
    reason="sets session state (isolation level, deadlock_timeout, a backend pid to watch), "
    "which transaction pooling does not keep; the direct PostgreSQL legs run it",
)
behind_pgbouncer = pytest.mark.skipif(
    not THROUGH_PGBOUNCER or connection.vendor != "postgresql",
    reason="runs behind PgBouncer only: BELONGSTO_PGBOUNCER=1 and DATABASE_URL a PostgreSQL "
    "database through it (the postgres-pgbouncer leg of .ci/run)",
)

# ----------------------------------------------------------- libraries

needs_permanent = pytest.mark.skipif(
    not PERMANENT_PATCHES,
    reason=(
        "django-permanent is not installed: 2.0 requires Django<6.0, and the test extra "
        "leaves it out on Python 3.12+, where Django 6 runs"
    ),
)

# ------------------------------------------------------ parametrisations

# Run a test both inside pytest-django's test transaction (create's atomic block
# becomes a savepoint) and outside one (a real transaction, committed or rolled back);
# the test starts with tests.helpers.check_mode(mode).
BOTH_MODES = pytest.mark.parametrize(
    "mode",
    [
        pytest.param("in-test-transaction"),
        pytest.param("transaction", marks=pytest.mark.django_db(transaction=True)),
    ],
)
