//! Log output through `tracing`: human-readable by default, JSON when the config or
//! `MOSAIC_AS_LOG_FORMAT=json` asks for it; the level comes from `RUST_LOG` (default info).

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, ENV_LOG_FORMAT};

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(configured: LogFormat) {
    let format = match std::env::var(ENV_LOG_FORMAT).ok().as_deref() {
        Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        _ => configured,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
