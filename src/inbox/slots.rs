//! Open event streams per agent (long-polls and SSE), bounded by
//! `limits.streams_per_agent`: a slot is held while a reader waits or streams.

use std::sync::Arc;

use dashmap::DashMap;

use crate::{ids::AgentSlug, metrics::OpenStream};

#[derive(Default)]
pub struct StreamSlots {
    open: DashMap<AgentSlug, usize>,
}

/// Holds one slot; frees it when dropped (also when a client disconnects).
pub struct Slot {
    slots: Arc<StreamSlots>,
    slug: AgentSlug,
    _open: OpenStream,
}

impl StreamSlots {
    /// A slot of `slug`'s, unless it already holds `max`.
    pub fn acquire(self: &Arc<Self>, slug: &AgentSlug, max: usize) -> Option<Slot> {
        let mut n = self.open.entry(slug.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            slug: slug.clone(),
            _open: OpenStream::count(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open.remove_if_mut(&self.slug, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_freed() {
        let slots = Arc::new(StreamSlots::default());
        let a = AgentSlug::parse("a").unwrap();
        let s1 = slots.acquire(&a, 2).unwrap();
        let _s2 = slots.acquire(&a, 2).unwrap();
        assert!(slots.acquire(&a, 2).is_none());
        drop(s1);
        assert!(slots.acquire(&a, 2).is_some());
    }
}
