//! hitl-extauth: how to run the gate.
