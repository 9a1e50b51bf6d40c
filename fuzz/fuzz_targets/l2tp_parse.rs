//! Fuzzes the L2TP header, AVP and control message parsers, and the LAC's datagram handling.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

struct Counter(u8);

impl l2sec_l2tp::Rng for Counter {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(37);
            *b = self.0;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((header, body)) = l2sec_l2tp::Header::parse(data) {
        if header.control {
            let _ = l2sec_l2tp::Message::parse(body, Some(b"secret"));
        }
    }
    let now = Instant::now();
    let mut lac = l2sec_l2tp::Lac::new(l2sec_l2tp::Config::default(), Box::new(Counter(1)), now);
    lac.connect(now);
    let _ = lac.handle_datagram(now, data);
    while lac.poll_transmit(now).is_some() {}
    lac.handle_timeout(now + Duration::from_secs(1));
    while lac.poll_event().is_some() {}
});
