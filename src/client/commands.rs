//! The command line's bridge commands (`send`, `typing`, `tail`, `agents`, `provision`), as
//! clap parses them, and running one: its output on stdout, an error on stderr with what to
//! do, exit status 1 on failure.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use clap::Subcommand;

use super::{agents, tail, BridgeClient, ClientError};
use crate::config::ProcessEnv;

/// Commands that call the bridge API of a running daemon (`MOSAIC_BRIDGE_URL`, default
/// http://127.0.0.1:9000, with `MOSAIC_BRIDGE_TOKEN`).
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Send a message as an agent (Markdown unless --plain); prints its event id.
    Send {
        #[arg(long)]
        agent: String,
        /// The room's id.
        #[arg(long)]
        room: String,
        /// Idempotency key: a retry with the same key is not sent twice.
        #[arg(long)]
        txn_id: Option<String>,
        /// Reply to this event.
        #[arg(long)]
        reply_to: Option<String>,
        /// Post in the thread of this root event.
        #[arg(long)]
        thread: Option<String>,
        /// The body is plain text, not Markdown.
        #[arg(long)]
        plain: bool,
        /// The message (several words are joined with spaces).
        #[arg(required = true)]
        body: Vec<String>,
    },
    /// Show (or with --off, stop showing) an agent typing in a room.
    Typing {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        room: String,
        #[arg(long)]
        off: bool,
        /// How long it lasts unless renewed (ms).
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Follow an agent's inbox as it arrives (Ctrl-C to stop).
    Tail {
        agent: String,
        /// Start after this cursor (or `latest`: only what arrives from now); default:
        /// the oldest item kept.
        #[arg(long)]
        since: Option<String>,
        /// One JSON item per line, for scripts.
        #[arg(long)]
        json: bool,
        /// Stop after this many items.
        #[arg(long)]
        count: Option<u64>,
    },
    /// List the agents this token acts for.
    Agents {
        #[arg(long)]
        json: bool,
    },
    /// Create a room with agents in it; prints its room id.
    Provision {
        /// The room's name.
        #[arg(long)]
        name: String,
        /// Agents to join, comma-separated or repeated.
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Users to invite, comma-separated or repeated.
        #[arg(long)]
        invite: Vec<String>,
        /// The alias's local part.
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        topic: Option<String>,
        /// A space to add the room to.
        #[arg(long)]
        space: Option<String>,
        /// Idempotency key: a retry answers the room made the first time.
        #[arg(long)]
        txn_id: Option<String>,
        /// The whole answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `command` against the daemon the environment names.
pub fn run(command: ClientCommand) -> ExitCode {
    let result = BridgeClient::from_env(&ProcessEnv).and_then(|client| execute(&client, command));
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(client: &BridgeClient, command: ClientCommand) -> Result<String, ClientError> {
    match command {
        ClientCommand::Send {
            agent,
            room,
            txn_id,
            reply_to,
            thread,
            plain,
            body,
        } => agents::send(
            client,
            &agents::Send {
                agent,
                room,
                body: body.join(" "),
                txn_id,
                reply_to,
                thread,
                plain,
            },
        ),
        ClientCommand::Typing {
            agent,
            room,
            off,
            timeout_ms,
        } => agents::typing(client, &agent, &room, !off, timeout_ms),
        ClientCommand::Tail {
            agent,
            since,
            json,
            count,
        } => {
            let stdout = std::io::stdout();
            let color = !json && stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let args = tail::Tail {
                agent,
                since,
                json,
                count,
                color,
            };
            let mut out = stdout.lock();
            tail::follow(client, &args, &mut out)?;
            let _ = out.flush();
            Ok(String::new())
        }
        ClientCommand::Agents { json } => agents::agents(client, json),
        ClientCommand::Provision {
            name,
            agents: slugs,
            invite,
            alias,
            topic,
            space,
            txn_id,
            json,
        } => {
            let args = agents::Provision {
                name,
                alias,
                topic,
                agents: slugs,
                invite,
                space,
                txn_id,
            };
            agents::provision(client, &args, json)
        }
    }
}
