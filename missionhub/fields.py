from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class SettingRangeIntegerField(serializers.IntegerField):
    """An integer within limits named by settings, read when a request is validated."""

    def __init__(self, *, min_setting: str, max_setting: str, **kwargs):
        self.min_setting, self.max_setting = min_setting, max_setting
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        low, high = getattr(settings, self.min_setting), getattr(settings, self.max_setting)
        if value < low:
            self.fail("min_value", min_value=low)
        if value > high:
            self.fail("max_value", max_value=high)
        return value


class CashField(SettingRangeIntegerField):
    """A whole number of cash units, given as a JSON integer, within limits named by settings.

    Strings ("500"), fractions (1.5), whole floats (100.0) and booleans are refused with
    code `invalid`: amounts of money are never guessed from another type. The limits are
    read when a request is validated, so they follow the settings.
    """

    default_error_messages = {"invalid": _("An amount is a whole number of cash units.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
