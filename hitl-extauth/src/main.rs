//! `hitl-extauth` binary entry point: parse configuration, start the server.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("hitl-extauth is not implemented yet")
}
