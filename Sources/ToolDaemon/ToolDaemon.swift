// ToolDaemon: filled in by its own commits.
