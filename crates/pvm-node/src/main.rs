//! `pvm-node`: configuration, wiring, shutdown. Everything else lives in the library.

use pvm_node::{config, logging, node};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config::load_from_process() {
        Ok(c) => c,
        Err(config::ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("pvm-node: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init("info") {
        eprintln!("pvm-node: logging: {e}");
    }
    let running = match node::start(config).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("pvm-node: {e}");
            return ExitCode::from(1);
        }
    };
    println!("PVM node {} serving on {}", node::VERSION, running.addr);
    for url in &running.console_urls {
        println!("  console: {url}");
    }
    if let Some(code) = &running.setup_code {
        println!("  first-run setup code: {code}");
    }
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvm-node: {e}");
            ExitCode::from(1)
        }
    }
}
