//! Anti-replay window (RFC 4303 section 3.4.3), kept as a ring of 64-bit words (RFC 6479).

/// Sequence numbers accepted behind the highest one seen (the window size).
pub const WINDOW: u32 = 2048;

const WORD_BITS: u32 = 64;
/// One word more than the window needs, so advancing clears whole words only (RFC 6479).
const WORDS: usize = (WINDOW / WORD_BITS) as usize + 1;
const RING_BITS: u32 = WORDS as u32 * WORD_BITS;

/// Receive-side replay state of one inbound SA.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest authenticated sequence number so far (0: none yet).
    top: u32,
    bits: [u64; WORDS],
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`ReplayWindow::check`] refused a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Not seen yet and inside or right of the window.
    Fresh,
    /// Seen before.
    Duplicate,
    /// Left of the window (or zero, which is never sent).
    TooOld,
}

impl ReplayWindow {
    /// An empty window: every non-zero sequence number is fresh.
    #[must_use]
    pub fn new() -> Self {
        Self {
            top: 0,
            bits: [0; WORDS],
        }
    }

    /// Highest sequence number recorded so far (0 if none).
    #[must_use]
    pub fn top(&self) -> u32 {
        self.top
    }

    fn slot(seq: u32) -> (usize, u64) {
        let bit = seq % RING_BITS;
        ((bit / WORD_BITS) as usize, 1u64 << (bit % WORD_BITS))
    }

    /// Classifies `seq` without recording it (call before the ICV check).
    #[must_use]
    pub fn check(&self, seq: u32) -> ReplayVerdict {
        if seq == 0 {
            return ReplayVerdict::TooOld;
        }
        if seq > self.top {
            return ReplayVerdict::Fresh;
        }
        if self.top - seq >= WINDOW {
            return ReplayVerdict::TooOld;
        }
        let (word, mask) = Self::slot(seq);
        if self.bits[word] & mask != 0 {
            ReplayVerdict::Duplicate
        } else {
            ReplayVerdict::Fresh
        }
    }

    /// Records `seq` as received (call after the ICV verified). Returns false, recording
    /// nothing, if `seq` is not fresh.
    pub fn update(&mut self, seq: u32) -> bool {
        if self.check(seq) != ReplayVerdict::Fresh {
            return false;
        }
        if seq > self.top {
            let old_word = self.top / WORD_BITS;
            let new_word = seq / WORD_BITS;
            let advance = (new_word - old_word).min(WORDS as u32);
            for i in 1..=advance {
                let w = ((old_word + i) % WORDS as u32) as usize;
                self.bits[w] = 0;
            }
            self.top = seq;
        }
        let (word, mask) = Self::slot(seq);
        self.bits[word] |= mask;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn basic_sequence() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(0), ReplayVerdict::TooOld);
        assert!(w.update(1));
        assert!(!w.update(1));
        assert_eq!(w.check(1), ReplayVerdict::Duplicate);
        assert!(w.update(5));
        assert!(w.update(3));
        assert_eq!(w.check(2), ReplayVerdict::Fresh);
        assert_eq!(w.check(3), ReplayVerdict::Duplicate);
        assert_eq!(w.top(), 5);
    }

    #[test]
    fn window_edges() {
        let mut w = ReplayWindow::new();
        assert!(w.update(10_000));
        // Exactly WINDOW - 1 behind the top is still inside.
        assert_eq!(w.check(10_000 - (WINDOW - 1)), ReplayVerdict::Fresh);
        assert_eq!(w.check(10_000 - WINDOW), ReplayVerdict::TooOld);
        assert!(w.update(10_000 - (WINDOW - 1)));
        assert_eq!(w.check(10_000 - (WINDOW - 1)), ReplayVerdict::Duplicate);
        // A big jump forgets everything behind the new window.
        assert!(w.update(10_000 + 10 * WINDOW));
        assert_eq!(w.check(10_000 + 9 * WINDOW + 1), ReplayVerdict::Fresh);
        assert_eq!(w.check(10_000 + 9 * WINDOW), ReplayVerdict::TooOld);
    }

    #[test]
    fn at_least_1024_reordering() {
        let mut w = ReplayWindow::new();
        for s in (1..=1500u32).rev() {
            // Top arrives first, then everything older in reverse order.
            assert!(w.update(s + 1000), "seq {}", s + 1000);
        }
        for s in 1001..=2500u32 {
            assert_eq!(w.check(s), ReplayVerdict::Duplicate);
        }
    }

    #[test]
    fn near_u32_max() {
        let mut w = ReplayWindow::new();
        assert!(w.update(u32::MAX));
        assert!(!w.update(u32::MAX));
        assert!(w.update(u32::MAX - 1));
        assert_eq!(w.check(u32::MAX - WINDOW), ReplayVerdict::TooOld);
    }

    /// Reference model: a set of seen numbers and the top.
    struct Model {
        seen: BTreeSet<u32>,
        top: u32,
    }

    impl Model {
        fn accept(&mut self, seq: u32) -> bool {
            let ok = seq != 0
                && !self.seen.contains(&seq)
                && (seq > self.top || self.top - seq < WINDOW);
            if ok {
                self.seen.insert(seq);
                self.top = self.top.max(seq);
            }
            ok
        }
    }

    fn seq_strategy() -> impl Strategy<Value = Vec<u32>> {
        // Mostly moving forward with jitter, sometimes big jumps, sometimes replays.
        prop::collection::vec((0u32..6000, 0u8..10), 1..400).prop_map(|steps| {
            let mut base = 1u32;
            steps
                .into_iter()
                .map(|(d, kind)| match kind {
                    0 => base.saturating_sub(d),
                    1 => {
                        base = base.saturating_add(d * 3);
                        base
                    }
                    _ => {
                        base = base.saturating_add(d % 8);
                        base.saturating_sub(d % 3000)
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn matches_model(seqs in seq_strategy()) {
            let mut w = ReplayWindow::new();
            let mut m = Model { seen: BTreeSet::new(), top: 0 };
            for s in seqs {
                let fresh = w.check(s) == ReplayVerdict::Fresh;
                let expect = m.accept(s);
                prop_assert_eq!(fresh, expect, "check of {}", s);
                prop_assert_eq!(w.update(s), expect, "update of {}", s);
                prop_assert_eq!(w.top(), m.top);
            }
        }
    }
}
