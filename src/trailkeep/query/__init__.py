"""The query language: a pure parser (``parser``) to a filter model (``ast``).

Not wired to the API or the CLI yet (issue 5); see docs/query-language.md.
"""
