//! The TUN offload against the real kernel, in a throw-away network namespace: a local TCP
//! client talks to a peer that this test plays on the other side of a TUN device with
//! offload on. The kernel hands over TCP super-packets (TSO) that [`Segments`] must split
//! into exactly the bytes the client wrote; packets joined by [`Gro`] must reach the client
//! as exactly the bytes the peer sent.
//!
//! The test re-executes itself under `unshare --net` (root only; otherwise it says why it is
//! skipped) and refuses to run unless its network namespace differs from the parent's.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use l2sec_netcfg::Tun;

use super::offload::{Gro, Segments, VnetHdr, complete_checksum, fold, sum};

const SANDBOX_ENV: &str = "L2SEC_ENGINE_TUN_SANDBOX";
const TEST: &str = "conn::tuntest::tcp_through_a_tun_with_offload";
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 77, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 77, 2);
const PORT: u16 = 5001;
/// Bytes the client sends (through TSO), and the peer sends back (through GRO).
const UP: usize = 200_000;
const DOWN: usize = 40 * 1000;

fn net_ns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn euid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?}");
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// A TCP/IPv4 packet from PEER:PORT to LOCAL:`dport` with valid checksums.
fn tcp4(dport: u16, seq: u32, ack: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let hl = 20 + opts.len();
    let total = 20 + hl + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&PEER.octets());
    p[16..20].copy_from_slice(&LOCAL.octets());
    let c = !fold(sum(&p[..20], 0));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&PORT.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((hl / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t[20..hl].copy_from_slice(opts);
    t[hl..].copy_from_slice(payload);
    let pseudo = sum(&p[12..20], 6 + (total - 20) as u64);
    let c = !fold(sum(&p[20..], pseudo));
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

/// True when the TCP/IPv4 packet's checksums verify.
fn verifies(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 15) * 4;
    let pseudo = sum(&p[12..20], 6 + (p.len() - ihl) as u64);
    fold(sum(&p[..ihl], 0)) == 0xffff && fold(sum(&p[ihl..], pseudo)) == 0xffff
}

/// Reads one packet from the TUN device (waiting up to 10 s).
fn read(tun: &Tun, buf: &mut [u8]) -> (VnetHdr, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut h = [0u8; Tun::VNET_HDR_LEN];
        match tun.read_vnet(&mut h, buf) {
            Ok(n) => return (VnetHdr::parse(&h), n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "nothing from the TUN device");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("TUN read: {e}"),
        }
    }
}

fn body() {
    ip(&["link", "set", "lo", "up"]);
    let tun = Tun::create("l2tst0").expect("TUN device");
    assert!(tun.has_vnet_hdr());
    tun.enable_offload().expect("TUNSETOFFLOAD");
    ip(&["addr", "add", &format!("{LOCAL}/24"), "dev", "l2tst0"]);
    ip(&["link", "set", "l2tst0", "mtu", "1400", "up"]);

    let client = std::thread::spawn(|| {
        let to = SocketAddr::from((PEER, PORT));
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(10)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&pattern(UP, 0x5a)).expect("send");
        let mut got = vec![0u8; DOWN];
        s.read_exact(&mut got).expect("receive");
        assert!(got == pattern(DOWN, 0xa5), "bytes from the peer differ");
    });

    let mut buf = vec![0u8; 65536];
    // SYN
    let (cport, cseq) = loop {
        let (_, n) = read(&tun, &mut buf);
        let p = &buf[..n];
        if p[0] >> 4 == 4 && p[9] == 6 && p[33] & 0x02 != 0 {
            let port = u16::from_be_bytes([p[20], p[21]]);
            break (port, u32::from_be_bytes([p[24], p[25], p[26], p[27]]));
        }
    };
    let iss = 7_000_000u32;
    // SYN-ACK with MSS 1360.
    let syn_ack = tcp4(
        cport,
        iss,
        cseq.wrapping_add(1),
        0x12,
        &[2, 4, 0x05, 0x50],
        &[],
    );
    tun.write(&syn_ack).unwrap();

    let mut up = Vec::with_capacity(UP);
    let mut next = cseq.wrapping_add(1);
    let (mut supers, mut split, mut single) = (0, 0, 0);
    while up.len() < UP {
        let (vh, n) = read(&tun, &mut buf);
        let p = &mut buf[..n];
        if p[0] >> 4 != 4 || p[9] != 6 {
            continue;
        }
        let mut segs: Vec<Vec<u8>> = Vec::new();
        if vh.is_gso() {
            let s = Segments::new(&vh, p).expect("a valid super-packet");
            supers += 1;
            split += s.count();
            for k in 0..s.count() {
                let mut out = vec![0u8; s.max_len()];
                let len = s.write(k, &mut out);
                out.truncate(len);
                assert!(len <= 1400, "segment of {len} bytes on a 1400 MTU");
                segs.push(out);
            }
        } else {
            complete_checksum(&vh, p).expect("checksum offsets");
            single += 1;
            segs.push(p.to_vec());
        }
        for s in segs {
            assert!(verifies(&s), "segment checksums");
            let hl = 20 + usize::from(s[32] >> 4) * 4;
            let seq = u32::from_be_bytes([s[24], s[25], s[26], s[27]]);
            if s.len() == hl {
                continue; // a pure ACK
            }
            assert_eq!(seq, next, "segments lost, duplicated or reordered");
            up.extend_from_slice(&s[hl..]);
            next = seq.wrapping_add((s.len() - hl) as u32);
        }
        tun.write(&tcp4(cport, iss.wrapping_add(1), next, 0x10, &[], &[]))
            .unwrap();
    }
    assert!(up == pattern(UP, 0x5a), "bytes from the client differ");
    assert!(
        supers > 0 && split > supers,
        "no TCP super-packet from the kernel ({single} single packets)"
    );

    // Down: 1000-byte segments joined by the coalescer, as they come from ESP.
    let down = pattern(DOWN, 0xa5);
    let mut gro = Gro::new();
    let mut writes = 0;
    let mut write = |h: &[u8; Tun::VNET_HDR_LEN], p: &[u8]| {
        writes += 1;
        let r = if *h == [0; Tun::VNET_HDR_LEN] {
            tun.write(p)
        } else {
            tun.write_vnet(h, p)
        };
        r.expect("TUN write");
    };
    for (k, chunk) in down.chunks(1000).enumerate() {
        let seq = iss.wrapping_add(1).wrapping_add((k * 1000) as u32);
        gro.push(&tcp4(cport, seq, next, 0x10, &[], chunk), &mut write);
    }
    gro.flush(&mut write);
    assert!(writes < DOWN / 1000, "nothing joined ({writes} writes)");
    client.join().expect("client");
    eprintln!(
        "{TEST}: {UP} bytes up in {supers} super-packets ({split} segments) and {single} \
         single packets; {DOWN} bytes down in {writes} writes"
    );
}

#[test]
fn tcp_through_a_tun_with_offload() {
    if let Ok(v) = std::env::var(SANDBOX_ENV) {
        let (parent, done) = v.split_once('|').expect("namespace|marker");
        assert!(
            !parent.is_empty() && net_ns() != parent,
            "refusing to touch the host: not inside a private network namespace"
        );
        body();
        std::fs::write(done, "done").unwrap();
        return;
    }
    if euid() != Some(0) {
        eprintln!("{TEST}: skipped: needs root (a network namespace and a TUN device)");
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("{TEST}: skipped: no /dev/net/tun");
        return;
    }
    let marker = tempfile::tempdir().unwrap();
    let done = marker.path().join("done");
    let status = Command::new("unshare")
        .args(["--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(SANDBOX_ENV, format!("{}|{}", net_ns(), done.display()))
        .status();
    match status {
        Ok(s) => {
            assert!(s.success(), "{TEST} failed inside its namespace");
            assert!(done.exists(), "{TEST} did not run inside its namespace");
        }
        Err(e) => eprintln!("{TEST}: skipped: cannot run unshare: {e}"),
    }
}
