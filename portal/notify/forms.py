"""The email-choices forms: a user's own, and a partner administrator's firm defaults."""

from __future__ import annotations

from wtforms import SelectChoice, SelectField

from portal.core.forms import PortalForm
from portal.notify import services


def _with_default(labels: dict[str, str], default_label: str) -> list[SelectChoice]:
    return [SelectChoice("", default_label)] + [SelectChoice(v, label)
                                                for v, label in labels.items()]


def _zones(default_label: str) -> list[SelectChoice]:
    return [SelectChoice("", default_label)] + [SelectChoice(z, z.replace("_", " "))
                                                for z in services.time_zones()]


class ChoicesForm(PortalForm):
    """What one user gets. The empty choice of each field is "as my firm decides"."""

    alerts = SelectField("Alert emails", description=(
        "Your follow-up tasks' reminders come unless you pick no alert emails."))
    frequency = SelectField("Digest email")
    hour = SelectField("Send the digest at", choices=[SelectChoice("", "Default (07:00)")] + [
        SelectChoice(str(h), f"{h:02d}:00") for h in range(24)])
    time_zone = SelectField("Your time zone", description=(
        "Also the zone of the due times and appointment times you type."))

    def fill(self, alerts: str, frequency: str, zone: str) -> ChoicesForm:
        """Name what the defaults currently are, so "default" says something."""
        self.alerts.choices = _with_default(
            {str(k): v for k, v in services.ALERT_LABELS.items()},
            f"My firm's default ({services.ALERT_LABELS.get(alerts, alerts)})")
        self.frequency.choices = _with_default(
            {str(k): v for k, v in services.DIGEST_LABELS.items()},
            f"Default ({services.DIGEST_LABELS.get(frequency, frequency).lower()})")
        self.time_zone.choices = _zones(f"Default ({zone.replace('_', ' ')})")
        return self


class FirmForm(PortalForm):
    """A partner administrator's defaults for the firm's users."""

    alerts = SelectField("Alert emails", choices=[
        SelectChoice(str(k), v) for k, v in services.ALERT_LABELS.items()])
    frequency = SelectField("Digest email", choices=[
        SelectChoice(str(k), v) for k, v in services.DIGEST_LABELS.items()])
    time_zone = SelectField("Firm's time zone")

    def fill(self, zone: str) -> FirmForm:
        self.time_zone.choices = _zones(f"The portal's ({zone.replace('_', ' ')})")
        return self
