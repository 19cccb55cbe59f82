"""The API's request parser: DRF's JSON parser with a bound on nesting.

Python's JSON decoder recurses once per level, so `{"username": [[[...]]]}` of a couple
of kilobytes raises RecursionError (a 500) inside DRF, which only turns ValueError into
a parse error. Here that body, and any body nested deeper than `max_depth`, is a
400 `parse_error`, and everything downstream (serializers, the error renderer, the
idempotency fingerprint) only ever sees data at most `max_depth` levels deep.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _deeper_than(data, limit: int) -> bool:
    """Whether `data` nests lists and objects more than `limit` levels (iteratively)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    # Our bodies are flat objects (a webhook's `events` list is two levels): 32 is generous.
    max_depth = 32

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = ParseError(f"JSON parse error - nested deeper than {self.max_depth} levels.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if isinstance(data, dict | list) and _deeper_than(data, self.max_depth):
            raise too_deep
        return data
