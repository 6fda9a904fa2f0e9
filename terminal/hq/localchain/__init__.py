"""A whole chain on one machine: a broker with TLS and the generated ACL, HQ with demo data,
a collector, the console and a simulated till (``posterm-hq local-chain``, which
``scripts/simulate.sh`` runs)."""
