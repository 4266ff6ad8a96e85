from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_role_description'),
    ]

    operations = [
        migrations.AddField(
            model_name='role',
            name='applications',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
