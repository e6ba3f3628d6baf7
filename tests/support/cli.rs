//! Running the binary's offline subcommands against a daemon's config.

use std::process::Command;

use super::{Daemon, DaemonOptions, SERVER_NAME};

/// A daemon config pointing nowhere (nothing is started).
pub fn offline(name: &str, options: DaemonOptions) -> Daemon {
    Daemon::standalone(name, "http://127.0.0.1:9", SERVER_NAME, options)
}

/// Runs `mosaic-as check-config --config <file>`, after `edit` changed the command
/// (e.g. its environment); answers the exit code and stdout followed by stderr.
pub fn check_config(d: &Daemon, edit: impl FnOnce(&mut Command)) -> (i32, String) {
    let mut cmd = d.command(&["check-config", "--config"]);
    cmd.arg(d.config_path());
    edit(&mut cmd);
    let out = cmd.output().expect("run check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// What a client command printed.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `mosaic-as <args>` as a bridge client: `MOSAIC_BRIDGE_URL` = `url`,
/// `MOSAIC_BRIDGE_TOKEN` = `token` (unset when `None`), nothing else of the daemon's.
pub fn bridge_client(url: &str, token: Option<&str>, args: &[&str]) -> CliRun {
    let mut cmd = Command::new(Daemon::binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MOSAIC_BRIDGE_URL", url)
        .stdin(std::process::Stdio::null());
    if let Some(token) = token {
        cmd.env("MOSAIC_BRIDGE_TOKEN", token);
    }
    let out = cmd.output().expect("run the mosaic-as client");
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
