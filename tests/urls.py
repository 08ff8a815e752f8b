from __future__ import annotations

from django.urls import path

from tests.ecosystem.admin import site

urlpatterns = [path("admin/", site.urls)]
