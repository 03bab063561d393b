//! hitl-ui: how to run the reviewer queue.
