"""Test support: real servers (Mosquitto, PostgreSQL) and certificates made on the spot."""
