"""On PostgreSQL, the change history is append-only whoever asks, like the other audit logs:

- its chain links refuse UPDATE and DELETE (the function of migration 0002);
- django-auditlog's entries refuse DELETE, and UPDATE except the one the database does by
  itself: emptying the actor when a user is deleted (``on_delete=SET_NULL``), nothing else
  changed. (So an object type with history cannot be removed: its entries would cascade.)
"""

from django.db import migrations

LINKS = "audit_changehistorylink"
ENTRIES = "auditlog_logentry"

ENTRY_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_guard_logentry() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND OLD.actor_id IS NOT NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE TRIGGER {LINKS}_append_only BEFORE UPDATE OR DELETE ON {LINKS} "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
    )
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(ENTRY_FUNCTION)  # no parameters: its '%' placeholders are PL/pgSQL's
    schema_editor.execute(
        f"CREATE TRIGGER {ENTRIES}_append_only BEFORE UPDATE OR DELETE ON {ENTRIES} "
        "FOR EACH ROW EXECUTE FUNCTION audit_guard_logentry()"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {ENTRIES}_append_only ON {ENTRIES}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_guard_logentry()")
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {LINKS}_append_only ON {LINKS}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_chain_existing_history"), ("auditlog", "0017_add_actor_email")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
