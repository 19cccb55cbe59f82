# ruff: noqa: RUF002 - the docstrings show the look-alike characters this module is about
"""The one canonical form of a username, and the look-alike test, for every way in.

A username is stored as typed after Unicode NFKC (so `ｖｉｅｗｅｒ１` is stored `viewer1`)
and compared in its canonical form: NFKC, Unicode case folding, NFKC again (the folding
can undo the normalisation). The canonical form is a column with a unique constraint, so
SQLite and PostgreSQL compare it the same way: neither database folds case for us
(SQLite's lower() and LIKE only fold ASCII).
"""

import unicodedata

from confusable_homoglyphs import confusables


def username_normalize(username: str) -> str:
    """The stored spelling: NFKC, case kept (what Django's own forms do to a username)."""
    return unicodedata.normalize("NFKC", username)


def username_canonical(username: str) -> str:
    """The compared spelling: `viewer1`, `ＶＩＥＷＥＲ１`, `𝐯𝐢𝐞𝐰𝐞𝐫𝟏` and `ᵛiewer₁` are one name."""
    return unicodedata.normalize("NFKC", username_normalize(username).casefold())


def username_is_confusable(username: str) -> bool:
    """True for a name that mixes scripts with a character that looks like another script's
    (`streаmer` with a Cyrillic а): the test django-registration applies to new usernames."""
    return bool(confusables.is_dangerous(username_normalize(username)))
