"""What a supporter reads: the Jinja2 environment, variants rendered once and inlined,
per-recipient merge fields, and previews with their checks."""
