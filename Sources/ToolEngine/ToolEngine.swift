// ToolEngine: filled in by its own commits.
