"""`flowspec test`: declared conversation scenarios run against the emulator, and recordings
of real calls to replay."""
