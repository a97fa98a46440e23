"""The embedded default stack: real servers started as child processes (Temporal dev server, HAPI)."""
