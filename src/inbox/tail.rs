//! The live tail of an agent's inbox: its newest entries in memory, so that a woken reader
//! needs no store read, and the signal readers wait on. The after-commit step appends to
//! it right after each commit, in commit order ([`Inboxes::append`](super::Inboxes::append));
//! HTTP workers read it. Older entries, and everything before the tail was anchored, are
//! read from the store.

use std::{collections::VecDeque, sync::Mutex};

use tokio::sync::{futures::Notified, Notify};

use crate::store::InboxEntry;

/// Entries kept in memory per agent.
const TAIL_LEN: usize = 64;

#[derive(Debug)]
struct TailState {
    /// Every entry with a cursor above this is in `recent`. `i64::MAX` until anchored.
    covered_from: i64,
    anchored: bool,
    /// The newest entry dropped for room before the anchor (0 when none was).
    dropped_unanchored: i64,
    recent: VecDeque<InboxEntry>,
}

#[derive(Debug)]
pub struct InboxTail {
    state: Mutex<TailState>,
    notify: Notify,
}

impl Default for InboxTail {
    fn default() -> Self {
        Self {
            state: Mutex::new(TailState {
                covered_from: i64::MAX,
                anchored: false,
                dropped_unanchored: 0,
                recent: VecDeque::new(),
            }),
            notify: Notify::new(),
        }
    }
}

impl InboxTail {
    fn lock(&self) -> std::sync::MutexGuard<'_, TailState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether [`anchor`](Self::anchor) ran.
    pub fn is_anchored(&self) -> bool {
        self.lock().anchored
    }

    /// Sets the store's latest cursor, as read after the tail was created: every entry
    /// after it reaches the tail through [`push`](Self::push), so readers past it need no
    /// store read. The first anchor counts (a later one may come from an older read).
    pub fn anchor(&self, latest_in_store: i64) {
        let mut st = self.lock();
        if st.anchored {
            return;
        }
        st.anchored = true;
        st.recent.retain(|e| e.cursor > latest_in_store);
        // Rows after the store's latest were committed after the read, and every commit
        // since the tail was created is pushed: the tail holds them all, but for any it
        // had to drop for room before the anchor.
        st.covered_from = latest_in_store.max(st.dropped_unanchored);
        drop(st);
        self.notify.notify_waiters();
    }

    /// The newest cursor of the inbox, once anchored.
    pub fn latest(&self) -> Option<i64> {
        let st = self.lock();
        let newest = st.recent.back().map_or(i64::MIN, |e| e.cursor);
        st.anchored.then_some(newest.max(st.covered_from))
    }

    /// Appends a committed entry (cursors arrive in increasing order) and wakes readers.
    pub fn push(&self, entry: InboxEntry) {
        let mut st = self.lock();
        if st.anchored && entry.cursor <= st.covered_from {
            return; // Already in the store when the tail was anchored.
        }
        if st.recent.back().is_some_and(|b| b.cursor >= entry.cursor) {
            return;
        }
        st.recent.push_back(entry);
        if st.recent.len() > TAIL_LEN {
            if let Some(old) = st.recent.pop_front() {
                if st.anchored {
                    st.covered_from = old.cursor;
                } else {
                    st.dropped_unanchored = old.cursor;
                }
            }
        }
        drop(st);
        self.notify.notify_waiters();
    }

    /// Entries after `since` (at most `limit`) when the tail covers them all; `None` when
    /// the store must be read.
    pub fn read_after(&self, since: i64, limit: usize) -> Option<Vec<InboxEntry>> {
        let st = self.lock();
        if !st.anchored || since < st.covered_from {
            return None;
        }
        Some(
            st.recent
                .iter()
                .filter(|e| e.cursor > since)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    /// Wakes the readers without an entry (one was committed elsewhere).
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// A future that completes at the next push or anchor. Create it (and `enable` it)
    /// before checking for entries, so that no wake-up is missed in between.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::test_entry;

    fn entry(cursor: i64) -> InboxEntry {
        test_entry(cursor, false, "{}")
    }

    fn cursors(v: Option<Vec<InboxEntry>>) -> Option<Vec<i64>> {
        v.map(|v| v.iter().map(|e| e.cursor).collect())
    }

    #[test]
    fn covers_only_after_the_anchor() {
        let t = InboxTail::default();
        t.push(entry(5));
        assert_eq!(cursors(t.read_after(0, 10)), None, "not anchored yet");
        t.anchor(4);
        assert_eq!(cursors(t.read_after(4, 10)), Some(vec![5]));
        assert_eq!(
            cursors(t.read_after(3, 10)),
            None,
            "before the anchor: store"
        );
        t.push(entry(3)); // older than what it has: ignored
        t.push(entry(9));
        assert_eq!(cursors(t.read_after(5, 10)), Some(vec![9]));
    }

    #[test]
    fn eviction_moves_the_coverage() {
        let t = InboxTail::default();
        t.anchor(0);
        for c in 1..=(TAIL_LEN as i64 + 10) {
            t.push(entry(c));
        }
        assert_eq!(cursors(t.read_after(5, 10)), None);
        let from = 10;
        assert_eq!(cursors(t.read_after(from, 2)), Some(vec![11, 12]));
    }

    #[test]
    fn entries_dropped_before_the_anchor_are_read_from_the_store() {
        let t = InboxTail::default();
        for c in 1..=(TAIL_LEN as i64 + 6) {
            t.push(entry(c));
        }
        // The store read behind the anchor saw none of them.
        t.anchor(0);
        assert_eq!(cursors(t.read_after(0, 10)), None, "1..=6 were dropped");
        assert_eq!(cursors(t.read_after(6, 2)), Some(vec![7, 8]));
    }

    #[test]
    fn the_first_anchor_counts() {
        let t = InboxTail::default();
        t.push(entry(5));
        t.anchor(4);
        // A second reader's older store read must not claim more coverage.
        t.anchor(2);
        assert_eq!(cursors(t.read_after(2, 10)), None);
        assert_eq!(cursors(t.read_after(4, 10)), Some(vec![5]));
    }
}
