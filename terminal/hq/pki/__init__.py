"""HQ's certificate authority: an offline root, an issuing CA for terminals, revocation."""
