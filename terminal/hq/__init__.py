"""The HQ reference side: bundles, the chain-wide ledger, the fleet."""
