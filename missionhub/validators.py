"""Validators shared by the API's serializers, the pages' forms and the services."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Unicode's Cc category, exactly: C0 (U+0000-U+001F), DEL and C1 (U+007F-U+009F). The set
# is fixed by Unicode's stability policy, so a character class is as good as unicodedata.
CONTROL_CHARACTERS = "".join(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))
_CONTROL = re.compile(f"[{re.escape(CONTROL_CHARACTERS)}]")
# What a browser's <textarea> sends as line breaks (CRLF), and the lone forms.
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")

CONTROL_CHARACTERS_MESSAGE = _("Control characters (line breaks, tabs, NUL and the like) are not allowed here.")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def refuse_control_characters(value: object) -> None:
    """Refuse text holding CR, LF, NUL or any other Unicode Cc character (code `invalid`).

    Such characters in a title or an address end up in email headers, logs and exports:
    no text a user types needs them.
    """
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE, code="invalid")


def line_breaks_to_spaces(value: str) -> str:
    return _LINE_BREAKS.sub(" ", value)


def one_line(value: str) -> str:
    """`value` as one line for an email header: every control character and line break
    (Unicode's U+2028 and U+2029 included) becomes a space, and runs of spaces one."""
    return " ".join(_CONTROL.sub(" ", value).split())
