"""Events out: what happened on a call, sent to another system (`events.webhook`)."""
