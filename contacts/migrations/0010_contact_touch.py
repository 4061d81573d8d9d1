import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0009_import_language"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContactTouch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("contact_id", models.BigIntegerField()),
                ("touched_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
    ]
