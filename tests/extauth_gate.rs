//! Integration tests for hitl-extauth (being written).
