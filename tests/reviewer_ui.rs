//! Integration tests for hitl-ui (being written).
