//! mock-db-mcp: how to run the orders database.
