"""Per-paper pipelines: each wires cohorts, encoders, probes and the audit for one paper, so
that its notebook only calls them with its parameters."""
