//! Injected randomness: the OS generator, a deterministic test generator, and an adapter to `rand_core`.

use sha2::{Digest, Sha256};

/// A source of random bytes, injected into every component that needs randomness.
pub trait Rng: Send {
    /// Fill `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

/// The operating system's generator (getrandom).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

impl Rng for OsRng {
    /// Fill from the OS generator.
    ///
    /// # Panics
    /// If the OS generator keeps failing: running on without randomness would be unsafe.
    fn fill(&mut self, dest: &mut [u8]) {
        let mut last = None;
        for _ in 0..8 {
            match getrandom::getrandom(dest) {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
        }
        panic!("os random number generator failed: {last:?}");
    }
}

/// A deterministic generator for tests: SHA-256(seed || counter) blocks. Not for production keys.
#[derive(Clone)]
pub struct TestRng {
    seed: u64,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl TestRng {
    /// A generator whose output is a pure function of `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        TestRng {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl std::fmt::Debug for TestRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRng")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Rng for TestRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(self.seed.to_be_bytes());
                h.update(self.counter.to_be_bytes());
                self.block = h.finalize().into();
                self.counter = self.counter.wrapping_add(1);
                self.used = 0;
            }
            *b = self.block[self.used];
            self.used += 1;
        }
    }
}

/// Adapts any [`Rng`] to `rand_core` 0.6 `RngCore + CryptoRng` (for the `rsa` and elliptic-curve crates).
pub struct RngAdapter<'a>(pub &'a mut dyn Rng);

impl std::fmt::Debug for RngAdapter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RngAdapter")
    }
}

impl rand_core::RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for RngAdapter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::RngCore;

    #[test]
    fn test_rng_is_deterministic_and_seed_dependent() {
        let (mut a, mut b, mut c) = (TestRng::new(7), TestRng::new(7), TestRng::new(8));
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 100], [0u8; 100]);
        a.fill(&mut x);
        b.fill(&mut y[..33]);
        b.fill(&mut y[33..]);
        c.fill(&mut z);
        assert_eq!(x, y, "split fills must give the same stream");
        assert_ne!(x, z);
        // First block is SHA-256(seed || 0).
        let mut h = Sha256::new();
        h.update(7u64.to_be_bytes());
        h.update(0u64.to_be_bytes());
        assert_eq!(&x[..32], h.finalize().as_slice());
    }

    #[test]
    fn os_rng_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRng.fill(&mut a);
        OsRng.fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn adapter_forwards() {
        let mut r = TestRng::new(1);
        let mut expect = [0u8; 12];
        TestRng::new(1).fill(&mut expect);
        let mut ad = RngAdapter(&mut r);
        let a = ad.next_u32().to_le_bytes();
        let b = ad.next_u64().to_le_bytes();
        assert_eq!(a, expect[..4]);
        assert_eq!(b, expect[4..]);
    }
}
