"""`flowspec serve` and friends: the HTTP/WebSocket server, metrics, logs, the offline default."""
