"""The kernel every deployable shares: settings, database access, the device contract, MQTT,
the calendar, credentials, health and process helpers. It imports no other package."""
