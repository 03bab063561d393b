//! `hitl-ui` binary entry point: parse configuration, start the server.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("hitl-ui is not implemented yet")
}
