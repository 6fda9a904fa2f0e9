"""Device drivers: one module per device kind, real and simulated back-ends side by side."""
