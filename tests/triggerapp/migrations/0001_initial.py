from django.db import migrations, models


def create_index(apps, schema_editor):
    model = apps.get_model("triggerapp", "PostIndex")
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            "CREATE VIRTUAL TABLE triggerapp_postindex USING fts5(title, body)"
        )
    else:
        schema_editor.create_model(model)


def drop_index(apps, schema_editor):
    schema_editor.execute("DROP TABLE triggerapp_postindex")


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Post",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=200)),
                ("body", models.TextField(blank=True, default="")),
            ],
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("post_id", models.IntegerField()),
                ("action", models.CharField(max_length=10)),
            ],
        ),
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("name", models.CharField(max_length=50, primary_key=True, serialize=False)),
                ("value", models.IntegerField(default=0)),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PostIndex",
                    fields=[
                        ("id", models.IntegerField(db_column="rowid", primary_key=True, serialize=False)),
                        ("title", models.TextField()),
                        ("body", models.TextField()),
                    ],
                ),
            ],
        ),
        # The table itself, as the vendor allows.
        migrations.RunPython(create_index, drop_index, atomic=False),
    ]
