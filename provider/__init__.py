"""The multi-language package ``redis-keda-platform``: ``package.py`` serves the repository's
``Platform`` component (components/platform.py) through Pulumi's Python component provider;
``__main__.py`` is what Pulumi's language host runs."""
