"""The local store: record logs (the source of truth), run directories, the run index, and
reading histories back."""
