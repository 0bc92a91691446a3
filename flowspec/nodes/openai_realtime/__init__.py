"""The OpenAI Realtime nodes: one implementation, two dialects (GA and beta)."""
