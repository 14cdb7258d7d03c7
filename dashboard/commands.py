"""Remote commands the device page offers, and the API body each one sends."""

from dashboard.i18n import t

COMMANDS = ("reboot", "notice", "power_schedule")


def command_options(lang: str) -> list[dict]:
    """The commands a device takes, in the chosen language."""
    return [{"label": t(f"command.{c}", lang), "value": c} for c in COMMANDS]


def command_body(name: str, text: str | None, on: str | None, off: str | None) -> dict:
    """The API's command body for the form's values (the API validates and answers)."""
    params = {"notice": {"text": text or ""}, "power_schedule": {"on": on or "", "off": off or ""}}.get(name, {})
    return {"name": name, "params": params}
