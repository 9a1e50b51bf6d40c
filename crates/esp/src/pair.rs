//! The SAs of one peer across a rekey: outbound uses the newest at once, inbound accepts the
//! previous one too until it is retired.

use crate::sa::{Event, Opened, Sa, Stats};
use crate::{Error, peek_spi};

/// The current SA and, during a rekey, the previous one.
#[derive(Debug)]
pub struct SaPair {
    current: Sa,
    previous: Option<Sa>,
    /// Counters of SAs already retired, plus drops of packets no SA claimed.
    retired: Stats,
}

/// The name the engine may use for an [`SaPair`].
pub type Endpoint = SaPair;

impl SaPair {
    /// Starts with one SA.
    #[must_use]
    pub fn new(sa: Sa) -> Self {
        Self {
            current: sa,
            previous: None,
            retired: Stats::default(),
        }
    }

    /// Installs a freshly negotiated SA: outbound switches to it at once, the old current SA
    /// stays for inbound until [`SaPair::retire_previous`]. An SA older than that is dropped
    /// and returned.
    pub fn install(&mut self, new: Sa) -> Option<Sa> {
        let old = std::mem::replace(&mut self.current, new);
        let dropped = self.previous.replace(old);
        if let Some(d) = &dropped {
            self.retired.add(d.stats());
        }
        dropped
    }

    /// Drops the previous SA (first packet seen on the new one, or grace period over) and
    /// returns it.
    pub fn retire_previous(&mut self) -> Option<Sa> {
        let dropped = self.previous.take();
        if let Some(d) = &dropped {
            self.retired.add(d.stats());
        }
        dropped
    }

    /// The SA used for outbound traffic.
    #[must_use]
    pub fn current(&self) -> &Sa {
        &self.current
    }

    /// The SA used for outbound traffic, mutably.
    pub fn current_mut(&mut self) -> &mut Sa {
        &mut self.current
    }

    /// The previous SA, while it is still accepted inbound.
    #[must_use]
    pub fn previous(&self) -> Option<&Sa> {
        self.previous.as_ref()
    }

    /// Whether `spi` is the inbound SPI of one of the live SAs.
    #[must_use]
    pub fn has_spi_in(&self, spi: u32) -> bool {
        self.current.spi_in() == spi || self.previous.as_ref().is_some_and(|p| p.spi_in() == spi)
    }

    /// Seals with the current SA (see [`Sa::seal`]).
    pub fn seal(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, Error> {
        self.current.seal(buf, payload_len, next_header)
    }

    /// Opens with whichever live SA owns the packet's SPI (see [`Sa::open`]); `Opened::spi`
    /// tells which one.
    pub fn open(&mut self, packet: &mut [u8]) -> Result<Opened, Error> {
        let spi = peek_spi(packet);
        if spi == Some(self.current.spi_in()) {
            return self.current.open(packet);
        }
        if let Some(prev) = self.previous.as_mut() {
            if spi == Some(prev.spi_in()) {
                return prev.open(packet);
            }
        }
        match spi {
            Some(s) => {
                self.retired.drops.unknown_spi += 1;
                Err(Error::UnknownSpi(s))
            }
            None => {
                self.retired.drops.malformed += 1;
                Err(Error::Malformed("esp packet too short or spi zero"))
            }
        }
    }

    /// Counters summed over the live SAs, the retired ones and unclaimed packets.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut s = self.retired;
        s.add(self.current.stats());
        if let Some(p) = &self.previous {
            s.add(p.stats());
        }
        s
    }

    /// The next event of the current SA, then of the previous one.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.current
            .poll_event()
            .or_else(|| self.previous.as_mut().and_then(Sa::poll_event))
    }
}
