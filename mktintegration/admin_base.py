"""Admin building blocks shared by the apps."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows an exact COUNT(*) is cheap; above it PostgreSQL's estimate is used
# for an unfiltered list (filters and searches still count exactly).
EXACT_COUNT_BELOW = 200_000


class EstimatedCountPaginator(Paginator):
    """Paginate big unfiltered tables with PostgreSQL's row estimate instead of COUNT(*)."""

    @cached_property
    def count(self):
        query = self.object_list.query
        connection = connections[self.object_list.db]
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= EXACT_COUNT_BELOW:
                return row[0]
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only: nobody, superusers included, adds, changes or deletes through the admin."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
