"""The operator console: one page per operator (`GET /console`) and its one read
(`GET /api/console`), assembled from the services."""
