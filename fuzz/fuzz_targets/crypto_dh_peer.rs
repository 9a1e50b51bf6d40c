//! Peer Diffie-Hellman public values: validation must never panic, for every group.
#![no_main]

use l2sec_crypto::{DhGroup, DhKeyPair};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, peer)) = data.split_first() else {
        return;
    };
    // Groups up to 2048 bits keep each run fast; 3072/4096 share the same MODP code.
    let groups = [
        DhGroup::Modp768,
        DhGroup::Modp1024,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Modp2048,
    ];
    let group = groups[usize::from(sel) % groups.len()];
    let Ok(key) = DhKeyPair::from_private(group, &[0x5a; 32]) else {
        return;
    };
    if let Ok(shared) = key.compute_shared(peer) {
        assert_eq!(shared.len(), group.shared_len());
    }
});
