"""The team server: `nbtracker server` (needs `pip install "nbtracker[server]"`)."""
