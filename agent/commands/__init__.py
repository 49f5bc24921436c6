"""Sub-commands of the ``fleet-agent`` CLI, one module each."""
