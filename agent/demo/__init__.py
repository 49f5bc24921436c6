"""The demonstration fleet and pipeline (``fleet-agent demo``)."""
