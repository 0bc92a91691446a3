"""flowspec: declarative graph runtime for realtime voice and text bots."""

__version__ = "0.1.0"
