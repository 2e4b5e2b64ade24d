"""Code the worker and producer images share (each image copies apps/common)."""
