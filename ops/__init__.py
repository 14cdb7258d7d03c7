"""Launch and operations tooling: the `cockpit` command, the embedded stack, the demo seed,
backups and the broker's access files. The top of the house: it may import every package."""
