"""``prefetch()``, ``aprefetch()`` and ``ScopedPrefetch`` in a project that does
not install ``django.contrib.contenttypes`` (they imported the polymorphic field,
and so contenttypes' models, to tell the field kinds apart)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "standalone" / "no_contenttypes.py"


def test_batch_loading_works_without_contenttypes() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "prefetch 1 ['0', '1', '2']",
        "ScopedPrefetch 2 ['0', '1', '2']",
        "aprefetch 0 ['0', '1', '2']",
    ]
