// JSONSchema: filled in by its own commits.
