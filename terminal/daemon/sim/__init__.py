"""`posterm run --simulate`: the real daemon with simulated hardware, driven from a terminal."""
