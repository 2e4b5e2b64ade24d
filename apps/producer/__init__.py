"""Task producer: submits user records to the worker's queue (no worker code needed)."""
