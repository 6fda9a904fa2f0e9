"""Member care (issue 13): campaigns to the analytics' segments, by SMS and email, to members who
agreed to them, each message sent once through a durable outbox (docs/member-care.md)."""
