"""Static typing tests, checked by mypy (mypy.ini) and pyright (pyrightconfig.json);
never run or collected by pytest.

The package is also a Django app (``models.py``), installed only by ``settings.py``,
the settings mypy.ini gives django-stubs' plugin: the plugin types a field from the
model Django registered, so the models it checks must be registered.
"""
