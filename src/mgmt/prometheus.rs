//! The Prometheus exporter (`--prometheus`): not written yet.

use std::sync::Arc;

use crate::config::Config;
use crate::mgmt::runtime::Runtime;

/// Start it when the configuration asks for it (placeholder until written).
pub fn start(_cfg: &Config, _runtime: &Arc<Runtime>) -> anyhow::Result<()> {
    Ok(())
}
