//! Integration tests for the-manifests (being written).
