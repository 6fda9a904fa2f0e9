"""The HQ web console: accounts and roles, members, fleet, audit, a JSON API (docs/console.md)."""
