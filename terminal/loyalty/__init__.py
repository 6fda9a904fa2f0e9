"""The points domain: pure rules and ledger arithmetic (stdlib only), plus its store."""
