// ToolClient: filled in by its own commits.
