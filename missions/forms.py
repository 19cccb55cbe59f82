import secrets

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from missionhub.validators import line_breaks_to_spaces, refuse_control_characters

# (seconds, label) for the duration picker; only those inside the settings' range are offered.
DURATIONS = [
    (5 * 60, _("5 minutes")),
    (15 * 60, _("15 minutes")),
    (30 * 60, _("30 minutes")),
    (60 * 60, _("1 hour")),
    (3 * 3600, _("3 hours")),
    (12 * 3600, _("12 hours")),
    (24 * 3600, _("1 day")),
    (3 * 24 * 3600, _("3 days")),
    (7 * 24 * 3600, _("7 days")),
]
QUICK_PLEDGES = [500, 1_000, 5_000, 10_000]
QUICK_TOPUPS = [10_000, 50_000, 100_000]


class CashInput(forms.IntegerField):
    """An amount within the limits of two settings, read when the form is built."""

    def __init__(self, *, min_setting: str, max_setting: str, **kwargs):
        low, high = getattr(settings, min_setting), getattr(settings, max_setting)
        kwargs.setdefault("widget", forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}))
        super().__init__(min_value=low, max_value=high, label=_("Amount"), **kwargs)


class OneParagraphField(forms.CharField):
    """A <textarea> whose text is kept as one paragraph.

    Browsers send a textarea's line breaks as CRLF: this page form turns them into spaces
    before validating, so a typed Enter is not an error. Every other control character is
    refused, and the API (which has no textarea) refuses line breaks too.
    """

    def to_python(self, value):
        return line_breaks_to_spaces(super().to_python(value))


def one_time_key() -> str:
    return secrets.token_urlsafe(18)


class OneTimeKeyInput(forms.HiddenInput):
    """Renders a fresh key every time: each form drawn on a page, and each page drawn
    again after an error, is a new form that may be sent once."""

    def format_value(self, value):
        return one_time_key()


FORM_EXPIRED = _("This form has expired. Nothing moved: please send it again.")


class MoneyForm(forms.Form):
    """A form that moves cash. Its one-time key makes a second submission of the same
    form (a double click, a resend after a lost answer) move nothing: the view runs it
    through `ledger.idempotency` with `page_request`."""

    form_key = forms.CharField(
        widget=OneTimeKeyInput,
        max_length=64,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]{16,64}\Z", message=FORM_EXPIRED)],
        error_messages={"required": FORM_EXPIRED, "max_length": FORM_EXPIRED},
    )

    def fingerprint_data(self) -> dict:
        """What the submission asks for, without its key: a resubmission must match it."""
        return {name: value for name, value in self.cleaned_data.items() if name != "form_key"}


class PledgeForm(MoneyForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = CashInput(min_setting="MISSIONHUB_PLEDGE_MIN", max_setting="MISSIONHUB_PLEDGE_MAX")


class TopupForm(MoneyForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = CashInput(min_setting="MISSIONHUB_TOPUP_MIN", max_setting="MISSIONHUB_TOPUP_MAX")


class MissionForm(MoneyForm):
    streamer = forms.CharField(
        label=_("Streamer"),
        max_length=150,
        widget=forms.TextInput(attrs={"list": "streamer-suggestions", "autocomplete": "off"}),
        validators=[refuse_control_characters],
    )
    title = forms.CharField(label=_("Challenge"), max_length=120, validators=[refuse_control_characters])
    description = OneParagraphField(
        label=_("Details"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_control_characters],
    )
    duration_seconds = forms.TypedChoiceField(label=_("Time to complete"), coerce=int)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = CashInput(min_setting="MISSIONHUB_PLEDGE_MIN", max_setting="MISSIONHUB_PLEDGE_MAX")
        low, high = settings.MISSIONHUB_MIN_MISSION_SECONDS, settings.MISSIONHUB_MAX_MISSION_SECONDS
        choices = [(seconds, label) for seconds, label in DURATIONS if low <= seconds <= high]
        self.fields["duration_seconds"].choices = choices or [(low, _("Shortest allowed"))]
        self.fields["duration_seconds"].initial = 30 * 60 if (30 * 60) in dict(choices) else None
        self.order_fields(["streamer", "title", "description", "amount", "duration_seconds"])


class DecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in ("accept", "reject", "success", "fail")])
