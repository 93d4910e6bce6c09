//! The records a collector has applied, by `eventID`, so that a call reported twice (by
//! EventBridge within seconds, by the trail's log file minutes later) is applied once.
//! Bounded: the oldest ids are forgotten first; a log file arrives within about 15
//! minutes of its events, far fewer than `capacity` acting records later.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Seen {
        Seen { ids: HashSet::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Whether `id` is new; it is remembered either way.
    pub fn first(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.remember(id);
        true
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id` (once applied), forgetting the oldest beyond the capacity.
    pub fn remember(&mut self, id: &str) {
        if self.ids.contains(id) {
            return;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Default for Seen {
    fn default() -> Self {
        Seen::new(65_536)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Seen;

    proptest! {
        /// It is a set of the last `cap` new ids: a remembered id is never new again, a
        /// forgotten one is, and it never holds more than `cap`.
        #[test]
        fn it_is_a_bounded_set(ids in proptest::collection::vec(0u8..40, 0..200), cap in 1usize..50) {
            let mut seen = Seen::new(cap);
            let mut model: std::collections::VecDeque<u8> = Default::default();
            for id in ids {
                let fresh = seen.first(&id.to_string());
                prop_assert_eq!(fresh, !model.contains(&id));
                if fresh {
                    model.push_back(id);
                    if model.len() > cap { model.pop_front(); }
                }
                prop_assert!(seen.len() <= cap);
            }
        }
    }

    #[test]
    fn a_repeated_id_is_not_fresh_until_forgotten() {
        let mut s = Seen::new(2);
        assert!(s.first("a"));
        assert!(!s.first("a"));
        assert!(s.first("b"));
        assert!(s.first("c")); // forgets "a"
        assert!(s.first("a"));
        assert!(!s.first("c"));
        assert_eq!(s.len(), 2);
    }
}
