//! Fuzzes the ISAKMP parsers: whole messages, payload chains, SA payloads and attributes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use l2sec_ike::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = wire::Message::parse(data) {
        // Whatever parses must re-encode and parse to the same payloads.
        let again = wire::Message::parse(&m.emit()).expect("re-parse of emitted message");
        assert_eq!(again.payloads, m.payloads);
    }
    if let Some((first, rest)) = data.split_first() {
        let _ = wire::collect_payloads(rest, *first);
    }
    let _ = wire::SaPayload::parse(data);
    let _ = wire::Attribute::parse_list(data);
    let _ = wire::NotifyPayload::parse(data);
    let _ = wire::DeletePayload::parse(data);
    let _ = wire::NatOaPayload::parse(data);
});
