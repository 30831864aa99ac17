"""YAML scenarios: schema, loading with file:line errors, running, oracles."""
