//! The `mosaic-as` command line: `serve`, `registration`, `check-config`, `gen-secrets`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use mosaic_as::{
    config::{self, Config, ProcessEnv},
    ids::Namespaces,
    matrix::registration::registration_yaml,
};
use rand::{distr::Alphanumeric, Rng};

/// mimalloc: fewer cycles per allocation than glibc's malloc on the request paths, and less
/// memory held per idle agent (see the README's Performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Matrix application service that hosts AI agents as virtual Matrix users.
///
/// Secrets come only from the environment: MOSAIC_AS_TOKEN (daemon → homeserver),
/// MOSAIC_HS_TOKEN (homeserver → daemon) and MOSAIC_BRIDGE_TOKENS (comma-separated bearer
/// tokens of the bridge API; set it to "" to disable the bridge). `gen-secrets` makes them.
#[derive(Parser)]
#[command(name = "mosaic-as", version, about, long_about)]
struct Cli {
    /// The TOML config file.
    #[arg(long, short, global = true, env = config::ENV_CONFIG, default_value = config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (HTTP server for the homeserver and the bridge API).
    Serve,
    /// Print the homeserver registration YAML (give it to Synapse's app_service_config_files).
    Registration,
    /// Validate the config file and the secret variables; print every problem (exit 2).
    CheckConfig,
    /// Print fresh random values for the three secret variables, in .env form.
    GenSecrets,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GenSecrets => {
            let token = || -> String {
                rand::rng()
                    .sample_iter(Alphanumeric)
                    .take(48)
                    .map(char::from)
                    .collect()
            };
            println!("{}={}", config::ENV_AS_TOKEN, token());
            println!("{}={}", config::ENV_HS_TOKEN, token());
            println!("{}={}", config::ENV_BRIDGE_TOKENS, token());
            ExitCode::SUCCESS
        }
        Command::CheckConfig => match Config::load(&cli.config, &ProcessEnv) {
            Ok(c) => {
                println!(
                    "{}: configuration OK (homeserver {}, listening on {}, {} bridge token(s))",
                    cli.config.display(),
                    c.homeserver.url,
                    c.appservice.listen,
                    c.secrets.bridge_tokens.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => report(&e),
        },
        Command::Registration => match Config::load(&cli.config, &ProcessEnv) {
            Ok(c) => {
                print!("{}", registration_yaml(&c, &namespaces(&c)));
                ExitCode::SUCCESS
            }
            Err(e) => report(&e),
        },
        Command::Serve => match Config::load(&cli.config, &ProcessEnv) {
            Ok(c) => serve(c),
            Err(e) => report(&e),
        },
    }
}

fn namespaces(c: &Config) -> Namespaces {
    Namespaces::new(
        c.homeserver.server_name.clone(),
        &c.appservice.agent_prefix,
        &c.appservice.alias_prefix,
        &c.appservice.sender_localpart,
    )
}

fn report(e: &config::ConfigError) -> ExitCode {
    for p in &e.problems {
        eprintln!("error: {p}");
    }
    ExitCode::from(2)
}

fn serve(config: Config) -> ExitCode {
    mosaic_as::telemetry::init(config.log.format);
    let system = actix::System::new();
    let result = system.block_on(mosaic_as::app::serve(config, shutdown_signal()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "mosaic-as stopped with an error");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
