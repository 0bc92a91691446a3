"""The `openai.speech` node: sentences, the `/v1/audio/speech` client, and the node."""
