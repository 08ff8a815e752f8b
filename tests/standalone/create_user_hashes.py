"""A project of its own with a BelongsToField to settings.AUTH_USER_MODEL and no
create_method=: ``create_owner(username=..., password=...)`` goes through
``UserManager.create_user()``, so the password column holds a hash, not the plain
text (run by tests/test_options.py in a process of its own, since the app registry
is set up once per process). Exits 1 if the plain text was stored."""

import sys

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "belongsto_ext",
        "__main__",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, models  # noqa: E402

from belongsto_ext import BelongsToField  # noqa: E402


class Product(models.Model):
    owner = BelongsToField(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)


call_command("migrate", verbosity=0)
with connection.schema_editor() as editor:
    editor.create_model(Product)

product = Product.objects.create()
user = product.create_owner(username="carol", password="secret")
stored = User.objects.get(pk=user.pk).password
print("stored password column:", repr(stored))
print("check_password('secret'):", user.check_password("secret"))
sys.exit(1 if stored == "secret" else 0)
