"""The run directory: its format (``run``: written atomically, checksummed, loadable) and the pictures saved in it (``figures``)."""
