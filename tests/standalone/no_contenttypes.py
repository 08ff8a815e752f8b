"""A project without django.contrib.contenttypes: prefetch(), aprefetch() and
ScopedPrefetch work there (run by tests/test_without_contenttypes.py in a
process of its own, since the app registry is set up once per process).
Prints the queries each call made; exits non-zero on any error."""

import asyncio
import os
import tempfile

import django
from django.apps import AppConfig
from django.conf import settings


class StandaloneConfig(AppConfig):
    name = "__main__"
    label = "standalone"
    default_auto_field = "django.db.models.BigAutoField"


settings.configure(
    INSTALLED_APPS=["belongsto_ext", "__main__.StandaloneConfig"],
    # A file: aprefetch() reads from a thread of its own, with its own connection.
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.mkdtemp(), "db.sqlite3"),
        }
    },
)
django.setup()

from django.db import connection, models  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

import belongsto_ext  # noqa: E402
from belongsto_ext import BelongsToField, ScopedPrefetch  # noqa: E402


class Author(models.Model):
    name = models.CharField(max_length=20)

    class Meta:
        app_label = "standalone"


class Book(models.Model):
    author = BelongsToField(Author, on_delete=models.CASCADE)

    class Meta:
        app_label = "standalone"


with connection.schema_editor() as editor:
    editor.create_model(Author)
    editor.create_model(Book)
authors = [Author.objects.create(name=str(i)) for i in range(3)]
for author in authors:
    Book.objects.create(author=author)

books = list(Book.objects.all())
with CaptureQueriesContext(connection) as sent:
    belongsto_ext.prefetch(books, "author")
    names = [book.get_author().name for book in books]
print("prefetch", len(sent), names)

with CaptureQueriesContext(connection) as sent:
    books = list(Book.objects.prefetch_related(ScopedPrefetch("author", scope=False)))
    names = [book.get_author(scope=False).name for book in books]
print("ScopedPrefetch", len(sent), names)

books = list(Book.objects.all())
asyncio.run(belongsto_ext.aprefetch(books, "author"))
with CaptureQueriesContext(connection) as sent:
    names = [book.get_author().name for book in books]
print("aprefetch", len(sent), names)
