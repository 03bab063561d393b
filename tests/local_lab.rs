//! Integration tests for the-local-lab (being written).
