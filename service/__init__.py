"""The spreadwatch application: files in, decisions out, and (later) the live loop."""
