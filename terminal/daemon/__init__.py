"""The terminal's process: its config, the composition root, `posterm run`, the simulation and the
`posterm` command line."""
