"""The terminal side of the MQTT link to chain HQ."""
