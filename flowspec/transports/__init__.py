"""Transports: how users reach a bot (browser, phone, text chat, console, WAV files)."""
