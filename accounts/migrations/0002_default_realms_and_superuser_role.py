from django.db import migrations


def create_defaults(apps, schema_editor):
    Realm = apps.get_model("accounts", "Realm")
    Role = apps.get_model("accounts", "Role")
    Realm.objects.get_or_create(name="default_native", defaults={"type": "native", "order": 0})
    Realm.objects.get_or_create(name="default_file", defaults={"type": "file", "order": 1})
    Role.objects.update_or_create(
        name="superuser",
        defaults={
            "cluster": ["all"],
            "indices": [{"names": ["*"], "privileges": ["all"], "allow_restricted_indices": True}],
            "run_as": ["*"],
            "metadata": {"_reserved": True},
            "built_in": True,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
