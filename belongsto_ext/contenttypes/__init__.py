"""BelongsToAnyField, the polymorphic field (it needs django.contrib.contenttypes)."""
