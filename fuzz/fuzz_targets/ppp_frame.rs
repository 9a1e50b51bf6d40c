//! Fuzz the PPP frame, control packet and option parsers, and a whole link fed with the
//! input split into frames.
#![no_main]

use std::time::{Duration, Instant};

use l2sec_crypto::TestRng;
use l2sec_ppp::wire::{CpPacket, Frame, parse_options};
use l2sec_ppp::{AuthMethod, Config, Link};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::parse(data) {
        if let Ok(p) = CpPacket::parse(f.payload) {
            let _ = parse_options(p.data);
        }
    }
    let now = Instant::now();
    let cfg = Config {
        user: "user".into(),
        auth: vec![AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap, AuthMethod::MsChapV1],
        ..Config::default()
    };
    let mut link = Link::new(cfg, Box::new(TestRng::new(1)), now);
    link.open(now);
    // frames separated by a 0x7e byte, as a simple way to feed a sequence
    for (i, frame) in data.split(|&b| b == 0x7e).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 500);
        let _ = link.handle_frame(t, frame);
        link.handle_timeout(t);
        while link.poll_transmit(t).is_some() {}
        while link.poll_event().is_some() {}
    }
});
