import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

# PostgreSQL refuses to change or remove history, whoever asks (the admin, a shell, a bug).
IMMUTABLE_SQL = """
CREATE FUNCTION projects_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit history is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER projects_auditevent_append_only
    BEFORE UPDATE OR DELETE ON projects_auditevent
    FOR EACH ROW EXECUTE FUNCTION projects_auditevent_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS projects_auditevent_append_only ON projects_auditevent;
DROP FUNCTION IF EXISTS projects_auditevent_append_only();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_api_token"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "actor_repr",
                    models.CharField(
                        help_text="Who, as it read at the time (user, token or system).", max_length=300
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[("create", "Created"), ("update", "Updated"), ("delete", "Deleted")], max_length=8
                    ),
                ),
                ("object_type", models.CharField(help_text="app_label.model", max_length=64)),
                ("object_id", models.CharField(max_length=64)),
                ("object_repr", models.CharField(max_length=300)),
                ("changes", models.JSONField(default=dict, help_text="field: [old, new]")),
                (
                    "actor",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="projects.organization",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
                (
                    "token",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="projects.apitoken",
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["project", "-at"], name="projects_au_project_75ae90_idx"),
                    models.Index(fields=["object_type", "object_id", "-at"], name="projects_au_object__49e293_idx"),
                    models.Index(fields=["organization", "-at"], name="projects_au_organiz_7728d6_idx"),
                ],
            },
        ),
        migrations.RunPython(_on_postgres(IMMUTABLE_SQL), _on_postgres(DROP_SQL)),
    ]
