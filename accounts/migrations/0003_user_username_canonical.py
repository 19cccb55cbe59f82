"""Usernames in one canonical form (NFKC, case folded) with a unique constraint on it.

Existing usernames are stored NFKC and their canonical form is filled in. Where two
existing accounts share a canonical form (`viewer1` and `ｖｉｅｗｅｒ１`, which registration
used to accept), one keeps the name (the one already stored NFKC, else the oldest) and the
others are renamed `<name>-<id>`, logged as a warning so staff can tell their owners.
"""

import logging
import unicodedata

from django.db import migrations, models

logger = logging.getLogger(__name__)
MAX_USERNAME = 150


# A frozen copy of accounts.usernames at the time of this migration.
def _nfkc(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def _canonical(name: str) -> str:
    return _nfkc(_nfkc(name).casefold())


def usernames_plan(rows: list[tuple[int, str]]) -> dict[int, tuple[str, str]]:
    """{pk: (username, canonical)} for every (pk, username), with unique canonical forms.

    The renamed come first in the returned order, so that saving in that order never
    gives two rows the same stored username on the way.
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for pk, name in sorted(rows):
        groups.setdefault(_canonical(name), []).append((pk, name))
    used_names = {name for _, name in rows}
    used_canonical = set(groups)
    keep: dict[int, tuple[str, str]] = {}
    renamed: dict[int, tuple[str, str]] = {}
    for canonical, members in groups.items():
        keeper = next(((pk, n) for pk, n in members if n == _nfkc(n)), members[0])
        for pk, name in members:
            normal = _nfkc(name)
            if pk == keeper[0] and len(normal) <= MAX_USERNAME:
                keep[pk] = (normal, canonical)
                continue
            suffix, attempt = f"-{pk}", 0
            while True:
                candidate = normal[: MAX_USERNAME - len(suffix)] + suffix
                if candidate not in used_names and _canonical(candidate) not in used_canonical:
                    break
                attempt += 1
                suffix = f"-{pk}-{attempt}"
            used_names.add(candidate)
            used_canonical.add(_canonical(candidate))
            renamed[pk] = (candidate, _canonical(candidate))
    return {**renamed, **keep}


def fill_canonical(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    users = User.objects.using(schema_editor.connection.alias)
    rows = list(users.values_list("pk", "username"))
    before = dict(rows)
    for pk, (username, canonical) in usernames_plan(rows).items():
        if _nfkc(before[pk]) != username:
            logger.warning("renamed user #%s %r to %r: its canonical form belongs to another account", pk, before[pk], username)
        users.filter(pk=pk).update(username=username, username_canonical=canonical)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_language"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_canonical",
            field=models.CharField(default="", editable=False, max_length=300),
            preserve_default=False,
        ),
        migrations.RunPython(fill_canonical, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name="user",
            name="accounts_user_username_ci_unique",
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(fields=("username_canonical",), name="accounts_user_username_canonical_unique"),
        ),
    ]
