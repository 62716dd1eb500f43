from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0002_report_progress_snapshots_reminders"),
    ]

    operations = [
        migrations.AddField(
            model_name="risk",
            name="accepted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        # Risks accepted before the field existed: their last change is the best estimate of the acceptance.
        migrations.RunSQL(
            "UPDATE ops_risk SET accepted_at = updated_at WHERE status = 'accepted'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
