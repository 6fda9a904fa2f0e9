"""Offline commands on a ledger file: scenario replay, member statements, the daily report."""
