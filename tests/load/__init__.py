"""Load and endurance tests: many concurrent browser sessions, long sessions, heavy neighbours."""
