//! `scripted-model` binary entry point: parse configuration, start the server.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("scripted-model is not implemented yet")
}
