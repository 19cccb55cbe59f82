"""SQLite only: append-only and zero-sum triggers, as pgtrigger installs on PostgreSQL."""

from django.db import migrations

from ledger import sqlite_guards


def install(apps, schema_editor):
    sqlite_guards.install(schema_editor)


def uninstall(apps, schema_editor):
    sqlite_guards.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_notification_failed_at"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
