"""flowspec-redact: the `text.redact` node type, as an installable flowspec plugin."""
