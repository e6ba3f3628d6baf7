//! The `mosaic-as` command line: `serve`, `registration`, `check-config`, `gen-secrets`,
//! and the bridge API's client: `token`, `send`, `typing`, `tail`, `agents`, `provision`.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use mosaic_as::{
    client::{commands::ClientCommand, tokens, BridgeClient},
    config::{self, Config, ProcessEnv},
    ids::Namespaces,
    matrix::registration::registration_yaml,
    store,
};
use rand::{distr::Alphanumeric, Rng};

/// How long `check-config` waits for the store's server to answer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// mimalloc: fewer cycles per allocation than glibc's malloc on the request paths, and less
/// memory held per idle agent (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Matrix application service that hosts AI agents as virtual Matrix users.
///
/// Secrets come only from the environment: MOSAIC_AS_TOKEN (daemon → homeserver),
/// MOSAIC_HS_TOKEN (homeserver → daemon) and MOSAIC_BRIDGE_TOKENS (comma-separated admin
/// tokens of the bridge API; set it to "" to disable the bridge). `gen-secrets` makes them;
/// `token create` issues scoped tokens for agent processes.
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
    Registration {
        /// Write it to this file (mode 0600: it holds both tokens) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Validate the config file and the secret variables; print every problem (exit 2).
    CheckConfig,
    /// Print fresh random values for the three secret variables, in .env form (and, commented
    /// out, one for MOSAIC_E2EE_KEY, needed with [e2ee] enabled).
    GenSecrets,
    /// Issue, list and revoke bridge tokens (talks to a running daemon: MOSAIC_BRIDGE_URL,
    /// default http://127.0.0.1:9000, with an admin MOSAIC_BRIDGE_TOKEN).
    #[command(subcommand)]
    Token(TokenCommand),
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; prints its value (shown this once) and nothing else on stdout.
    Create {
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated: send, read, profile, provision, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Agent patterns, comma-separated or repeated: a slug, `prefix-*` or `*`.
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Lifetime, e.g. 30d, 12h, 3600s (default: never expires).
        #[arg(long)]
        expires_in: Option<String>,
        /// Requests per second (default: the daemon's limits.token_rate_per_s).
        #[arg(long)]
        rate: Option<u32>,
    },
    /// List the issued tokens (never their values).
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once.
    Revoke {
        /// The token's id (`tok_...`, from `token list`).
        id: String,
    },
}

/// What `check-config` says with end-to-end encryption on: what the homeserver needs, which
/// the daemon cannot see from here.
const E2EE_HOMESERVER_NOTE: &str = "end-to-end encryption on: the registration asks for \
org.matrix.msc3202 and io.element.msc4190 (reload it in the homeserver after a change), and \
Synapse needs, in homeserver.yaml:\n  experimental_features:\n    \
msc3202_transaction_extensions: true\n    msc2409_to_device_messages_enabled: true";

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
            // Optional: commented out, ready to use.
            println!(
                "# with [e2ee] enabled (keep it: the agents' keys cannot be read without it):"
            );
            println!("# {}={}", config::ENV_E2EE_KEY, token());
            ExitCode::SUCCESS
        }
        Command::Token(command) => token(command),
        Command::Client(command) => mosaic_as::client::commands::run(command),
        Command::CheckConfig => match Config::load(&cli.config, &ProcessEnv) {
            Ok(c) => {
                // The store too, as `serve` would open it (a PostgreSQL server, database and
                // role that exist).
                let reachable = actix::System::new().block_on(store::check_reachable(
                    &c.store.url,
                    c.secrets.store_password.as_ref(),
                    STORE_CHECK_TIMEOUT,
                ));
                if let Err(e) = reachable {
                    eprintln!("error: store.url: {e}");
                    return ExitCode::from(2);
                }
                println!(
                    "{}: configuration OK (homeserver {}, listening on {}, {} admin bridge token(s))",
                    cli.config.display(),
                    c.homeserver.url,
                    c.appservice.listen,
                    c.secrets.bridge_tokens.len()
                );
                if c.e2ee.enabled {
                    println!("{E2EE_HOMESERVER_NOTE}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => report(&e),
        },
        Command::Registration { output } => match Config::load(&cli.config, &ProcessEnv) {
            Ok(c) => {
                let yaml = registration_yaml(&c, &namespaces(&c));
                let Some(path) = output else {
                    print!("{yaml}");
                    return ExitCode::SUCCESS;
                };
                match write_secret_file(&path, yaml.as_bytes()) {
                    Ok(()) => {
                        eprintln!("wrote {} (mode 0600)", path.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", path.display());
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => report(&e),
        },
        Command::Serve => match Config::load(&cli.config, &ProcessEnv) {
            Ok(c) => serve(c),
            Err(e) => report(&e),
        },
    }
}

/// Writes `contents` to `path`, readable by its owner only: a new file is created with mode
/// 0600, an existing one is narrowed to 0600 before anything secret is written into it.
fn write_secret_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt, os::unix::fs::PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Runs a `token` command against the daemon the environment names.
fn token(command: TokenCommand) -> ExitCode {
    let result = BridgeClient::from_env(&ProcessEnv).and_then(|client| match command {
        TokenCommand::Create {
            name,
            scopes,
            agents,
            expires_in,
            rate,
        } => {
            let args = tokens::Create {
                name,
                scopes,
                agents,
                expires_in,
                rate_per_s: rate,
            };
            tokens::create(&client, &args).map(|created| {
                eprintln!("{}", created.summary);
                created.value
            })
        }
        TokenCommand::List { json } => tokens::list(&client, json),
        TokenCommand::Revoke { id } => tokens::revoke(&client, &id),
    });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
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
