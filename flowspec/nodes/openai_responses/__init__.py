"""The `openai.responses` node: one protocol module and two thin wires (WebSocket, HTTP SSE)."""
