//! Envoy, the local gateway: its generated config and how to run it.
