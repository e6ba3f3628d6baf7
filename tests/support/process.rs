//! Child processes and scratch files of the harness.
//!
//! Children are spawned so that they die with the test process (Linux
//! `PR_SET_PDEATHSIG`, requested from one long-lived spawner thread, because the
//! signal fires when the *thread* that forked the child ends, and libtest ends a
//! test's thread as soon as the test returns). Scratch directories live under
//! `target/tmp/mosaic-harness/` and the ones left behind by dead test processes
//! (the shared stack is a `static` and is never dropped) are swept on the next run.
//! Logs of failed runs are copied to `target/test-logs/<name>-<timestamp>/`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The target directory of this build (`target/`).
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Spawns `cmd` so that the child is killed when this test process exits,
/// even when nothing ever drops the handle (the shared stack).
pub fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() as u32 != parent {
                    libc::_exit(1); // the parent died before prctl took effect
                }
                Ok(())
            });
        }
    }
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the harness spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .expect("harness spawner thread is gone");
    reply_rx
        .recv()
        .expect("harness spawner thread did not answer")
}

/// SIGTERM, then SIGKILL after `grace`; always reaps the child.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// The last `lines` lines of a text file (reads at most the last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return format!("<no file {}>", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `url` until it answers 2xx. Fails early when `child` exits.
pub fn wait_http_ok(
    client: &reqwest::blocking::Client,
    url: &str,
    child: &mut Child,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the process exited ({status}) before {url} answered"
            ));
        }
        let last = match client.get(url).timeout(Duration::from_secs(2)).send() {
            Ok(resp) if resp.status().is_success() => return Ok(start.elapsed()),
            Ok(resp) => format!("HTTP {}", resp.status()),
            Err(e) => e.to_string(),
        };
        if start.elapsed() > timeout {
            return Err(format!("{url} not OK after {timeout:?} (last: {last})"));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh directory under `target/tmp/mosaic-harness/`, removed on drop.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let base = target_dir().join("tmp").join("mosaic-harness");
        fs::create_dir_all(&base).expect("create target/tmp/mosaic-harness");
        static SWEPT: OnceLock<()> = OnceLock::new();
        SWEPT.get_or_init(|| sweep_stale(&base));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("p{}-{n}-{}", std::process::id(), sanitize(name)));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create scratch dir");
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes scratch dirs whose process (`p<pid>-...`) no longer runs.
fn sweep_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix('p')
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let dead = pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0);
        if dead && pid != i32::try_from(std::process::id()).ok() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Copies `files` to `target/test-logs/<name>-<timestamp>/` (the same directory
/// for every call with the same `name` in this process) and prints the path.
pub fn keep_failure_logs(name: &str, files: &[(String, PathBuf)]) -> Option<PathBuf> {
    static DIRS: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let dir = {
        let mut dirs = DIRS.lock().unwrap_or_else(PoisonError::into_inner);
        dirs.get_or_insert_with(HashMap::new)
            .entry(name.to_owned())
            .or_insert_with(|| {
                target_dir()
                    .join("test-logs")
                    .join(format!("{}-{}", sanitize(name), utc_stamp()))
            })
            .clone()
    };
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("harness: cannot create {}: {e}", dir.display());
        return None;
    }
    for (file_name, source) in files {
        if source.exists() {
            let _ = fs::copy(source, dir.join(file_name));
        }
    }
    eprintln!("harness: logs of the failed run kept in {}", dir.display());
    Some(dir)
}

/// `YYYYmmdd-HHMMSS` in UTC.
pub fn utc_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Random lowercase hex of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
