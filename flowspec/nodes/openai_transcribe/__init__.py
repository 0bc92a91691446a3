"""The `openai.transcribe` node and the two transcription-session dialects it speaks."""
