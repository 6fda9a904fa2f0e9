"""The wire protocol terminals and HQ share: topics, messages, canonical JSON, signed bundles and
their keys, derived ids, and the MQTT client."""
