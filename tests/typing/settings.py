"""The demo project's settings plus the typing tests' app (see ``__init__.py``)."""

from __future__ import annotations

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.typing"]
