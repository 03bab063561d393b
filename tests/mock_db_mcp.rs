//! Integration tests for mock-db-mcp (being written).
