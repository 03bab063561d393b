//! `mock-db-mcp` binary entry point: parse configuration, start the server.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("mock-db-mcp is not implemented yet")
}
