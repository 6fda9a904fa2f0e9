"""`python -m terminal.update`, the entry point the units run (see __main__)."""
