//! Logging setup and small output helpers shared by the commands.

use tracing_subscriber::EnvFilter;

/// Sends diagnostics to stderr at the level the user chose (`--log-level`, `-D`).
pub fn init_logging(level: &str) {
    let level = match level {
        "fatal" | "panic" => "error",
        l => l,
    };
    let filter = EnvFilter::try_new(format!(
        "warn,strata={level},store={level},image={level},layer={level}"
    ))
    .unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}
