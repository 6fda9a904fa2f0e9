"""The rules studio (issue 17): validate, lint and diff a candidate rule set against the rules in
force, and backtest it on the chain's own history, all with the terminal's own engine."""
