//! Outer and inner framing parsers of l2sec-esp on arbitrary bytes: RFC 3948 port-4500
//! demultiplexing, raw IPv4 header stripping and the inner UDP header.
#![no_main]

use l2sec_esp::{classify_udp4500, peek_spi, strip_ipv4_header, udp};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let _ = classify_udp4500(data);
    let _ = peek_spi(data);
    if let Ok(r) = strip_ipv4_header(data) {
        assert!(r.start <= r.end && r.end <= data.len());
    }
    let check = udp::ChecksumCheck::Verify {
        src: Ipv4Addr::new(198, 18, 0, 1),
        dst: Ipv4Addr::new(198, 18, 0, 2),
    };
    if let Ok(inner) = udp::parse(data, check) {
        assert!(inner.payload.end <= data.len());
    }
    let _ = udp::parse(data, udp::ChecksumCheck::Ignore);
});
