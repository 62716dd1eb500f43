from django.db import models
from django.utils import timezone


class TimeStampedQuerySet(models.QuerySet):
    """Keep `updated_at` true on the write paths that skip `save()`: `.update()` and `bulk_update()`.

    Incremental sync (`?ordering=updated_at`) reads `updated_at`, so a row changed without it moving
    would never be seen again. `bulk_create` needs nothing: it runs `auto_now` itself.
    """

    def update(self, **kwargs):
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)

    update.alters_data = True

    def bulk_update(self, objs, fields, batch_size=None):
        objs = list(objs)
        now = timezone.now()
        for obj in objs:
            obj.updated_at = now
        return super().bulk_update(objs, [*{*fields, "updated_at"}], batch_size=batch_size)

    bulk_update.alters_data = True


class UpdatedAtModel(models.Model):
    """Abstract base: when a row last changed, kept true on every write path (incremental sync reads it)."""

    updated_at = models.DateTimeField(auto_now=True)

    objects = TimeStampedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, update_fields=None, **kwargs):
        # `auto_now` sets the attribute, but `update_fields` decides which columns are written.
        if update_fields is not None and "updated_at" not in update_fields:
            update_fields = [*update_fields, "updated_at"]
        super().save(*args, update_fields=update_fields, **kwargs)


class TimeStampedModel(UpdatedAtModel):
    """Abstract base: when a row was created and last changed."""

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
