from django.db import migrations, models

import cluster.models


def create_installation(apps, schema_editor):
    """The installation's identity is made once, with the database, before any host serves."""
    Installation = apps.get_model("cluster", "Installation")
    Installation.objects.get_or_create(pk=1, defaults={"cluster_uuid": cluster.models.new_cluster_uuid()})


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Installation",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False),
                ),
                (
                    "cluster_uuid",
                    models.CharField(
                        default=cluster.models.new_cluster_uuid, editable=False, max_length=22, unique=True
                    ),
                ),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="installation_single_row")
                ],
            },
        ),
        migrations.RunPython(create_installation, migrations.RunPython.noop),
    ]
