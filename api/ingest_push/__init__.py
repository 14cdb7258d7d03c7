"""HTTP push of readings for vendor platforms that cannot speak MQTT."""
