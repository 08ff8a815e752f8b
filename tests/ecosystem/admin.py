"""An admin site for the ecosystem models (``tests/urls.py`` mounts it at /admin/)."""

from __future__ import annotations

from django.contrib import admin

from tests.ecosystem.models import Product

site = admin.AdminSite(name="ecosystem")


@admin.register(Product, site=site)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "vendor_in_scope")
    list_select_related = ("vendor",)
    fields = ("name", "vendor")

    @admin.display(description="vendor (default scope)")
    def vendor_in_scope(self, product: Product) -> str:
        vendor = product.get_vendor()  # type: ignore[attr-defined]
        return "-" if vendor is None else vendor.name
