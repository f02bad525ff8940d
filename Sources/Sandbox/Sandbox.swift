// Sandbox: filled in by its own commits.
