"""`python -m terminal.provision`, the entry point the units run (see __main__)."""
