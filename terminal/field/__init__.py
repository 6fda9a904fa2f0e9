"""Life in the store: provisioning a flashed terminal, signed updates, and the hardware doctor."""
