//! `store.sync = "full"` without an fsync inside the commit. SQLite's `synchronous = FULL`
//! syncs the WAL at the end of every commit, on the only writing connection, so the next
//! group commit waits for the disk. Instead the connections run `NORMAL` (which keeps the
//! database consistent: the WAL is synced before each checkpoint, and the database after)
//! and the writer task calls [`WalSync::sync`] after a commit, off the writing connection:
//! one `fdatasync` of the WAL file makes every frame appended so far durable, so it covers
//! every commit made before it, and the next group commit is written meanwhile. No caller
//! is answered before the sync that covers its commit (see [`crate::store::writer`]).

use std::{
    fs::File,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use crate::store::{StoreError, StoreResult};

/// The WAL file of one database, opened on first use.
pub struct WalSync {
    path: PathBuf,
    /// The open WAL file and its inode (SQLite keeps the file while a connection is open;
    /// should it be deleted and made anew, the inode tells and it is opened again). Shared,
    /// so that several syncs run at once (the kernel folds them into its journal commits).
    file: Mutex<Option<(Arc<File>, u64)>>,
}

impl WalSync {
    /// For the database at `database` (its WAL is `<database>-wal`).
    pub fn new(database: &std::path::Path) -> Arc<Self> {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Arc::new(Self {
            path: path.into(),
            file: Mutex::new(None),
        })
    }

    /// Makes every frame written to the WAL so far durable.
    pub async fn sync(self: &Arc<Self>) -> StoreResult<()> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.sync_now())
            .await
            .map_err(|e| StoreError::Commit(format!("the WAL sync task failed: {e}")))?
    }

    fn sync_now(&self) -> StoreResult<()> {
        let failed = |e: std::io::Error| {
            StoreError::Commit(format!("cannot sync {}: {e}", self.path.display()))
        };
        let current = std::fs::metadata(&self.path).map_err(failed)?.ino();
        let wal = {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if file.as_ref().is_none_or(|(_, ino)| *ino != current) {
                *file = Some((Arc::new(File::open(&self.path).map_err(failed)?), current));
            }
            Arc::clone(&file.as_ref().expect("opened above").0)
        };
        wal.sync_data().map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn syncs_the_wal_and_follows_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let sync = WalSync::new(&db);
        assert!(sync.sync().await.is_err(), "no WAL yet");
        std::fs::write(dir.path().join("x.db-wal"), b"frames").unwrap();
        sync.sync().await.unwrap();
        let first = sync.file.lock().unwrap().as_ref().unwrap().1;
        std::fs::remove_file(dir.path().join("x.db-wal")).unwrap();
        std::fs::write(dir.path().join("x.db-wal"), b"other frames").unwrap();
        sync.sync().await.unwrap();
        let second = sync.file.lock().unwrap().as_ref().unwrap().1;
        assert_ne!(first, second, "the new file is the one synced");
    }
}
