"""The conversation layer: per-call variables, openings, seeded context, silence, endings and
the events a call sends out, as the spec declares them (`variables:`, `conversation:`)."""
