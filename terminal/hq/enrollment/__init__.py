"""Enrollment in one visit: one-time codes HQ issues, redeemed by a new box for its certificate."""
