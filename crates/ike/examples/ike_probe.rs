//! Runs the IKEv1 initiator against a real server until the first ESP SA is ready.
//!
//! ```text
//! ike_probe --netns NS --server IP (--psk PSK | --cert C --key K --ca CA [--remote-id DN])
//!           [--ike aes256-sha1-modp2048,...] [--esp aes128-sha1,...] [--tunnel] [--aggressive]
//! ```
//! Sending from UDP 500/4500 needs root (CAP_NET_BIND_SERVICE).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use l2sec_ike::{
    Auth, CertAuth, Config, EspMode, Event, IkePort, Initiator, RemoteId, parse_esp_proposal,
    parse_ike_proposal,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Err(e) = run(&args) {
        eprintln!("ike_probe: {e}");
        std::process::exit(1);
    }
}

fn local_ip_towards(server: IpAddr) -> std::io::Result<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.connect((server, 500))?;
    Ok(s.local_addr()?.ip())
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(ns) = arg(args, "--netns") {
        l2sec_labutil::enter_netns(&ns)?;
    }
    let server: IpAddr = arg(args, "--server")
        .ok_or("--server IP is required")?
        .parse()?;
    let mut cfg = Config::default();
    if let Some(psk) = arg(args, "--psk") {
        cfg = Config::with_psk(psk.as_bytes());
    } else if let Some(cert) = arg(args, "--cert") {
        let key = arg(args, "--key").ok_or("--key is required with --cert")?;
        let ca = arg(args, "--ca").ok_or("--ca is required with --cert")?;
        let remote_id = arg(args, "--remote-id").map(RemoteId::Dn);
        cfg.auth = Auth::Cert(CertAuth::from_pem_or_der(
            &std::fs::read(cert)?,
            &std::fs::read(key)?,
            &std::fs::read(ca)?,
            remote_id,
        )?);
    } else {
        return Err("--psk or --cert is required".into());
    }
    if let Some(s) = arg(args, "--ike") {
        cfg.ike_proposals = s
            .split(',')
            .map(parse_ike_proposal)
            .collect::<Result<_, _>>()?;
    }
    if let Some(s) = arg(args, "--esp") {
        cfg.esp_proposals = s
            .split(',')
            .map(parse_esp_proposal)
            .collect::<Result<_, _>>()?;
    }
    if args.iter().any(|a| a == "--tunnel") {
        cfg.mode = EspMode::TunnelHost;
    }
    cfg.aggressive = args.iter().any(|a| a == "--aggressive");
    cfg.force_encap = args.iter().any(|a| a == "--force-encap");
    cfg.policy = l2sec_crypto::Policy::Weak;

    let local_ip = local_ip_towards(server)?;
    let s500 = UdpSocket::bind((local_ip, 500))?;
    let s4500 = UdpSocket::bind((local_ip, 4500))?;
    s500.set_read_timeout(Some(Duration::from_millis(20)))?;
    s4500.set_read_timeout(Some(Duration::from_millis(20)))?;
    let start = Instant::now();
    let mut ike = Initiator::new(
        cfg,
        SocketAddr::new(local_ip, 500),
        SocketAddr::new(server, 500),
        (4500, 4500),
        Box::new(l2sec_crypto::OsRng),
        start,
    )?;
    let mut buf = [0u8; 65536];
    let deadline = start + Duration::from_secs(60);
    loop {
        let now = Instant::now();
        while let Some(t) = ike.poll_transmit(now) {
            match (t.port, t.keepalive) {
                (IkePort::Ike, _) => s500.send_to(&t.data, (server, 500))?,
                (IkePort::NatT, true) => s4500.send_to(&t.data, (server, 4500))?,
                (IkePort::NatT, false) => {
                    let mut d = vec![0u8; 4];
                    d.extend_from_slice(&t.data);
                    s4500.send_to(&d, (server, 4500))?
                }
            };
        }
        while let Some(ev) = ike.poll_event() {
            match ev {
                Event::Phase1Done {
                    proposal,
                    nat,
                    legacy,
                } => {
                    println!(
                        "{:>7.3} phase 1 done: {proposal} (legacy: {legacy}), nat: {nat:?}",
                        start.elapsed().as_secs_f64()
                    );
                }
                Event::ChildSaReady {
                    sa,
                    proposal,
                    rekey,
                } => {
                    println!(
                        "{:>7.3} esp sa ready: {proposal} rekey={rekey} spi in {:#010x} out {:#010x} encap {:?} nat-oa {:?} lifetime {:?} s",
                        start.elapsed().as_secs_f64(),
                        sa.inbound.spi,
                        sa.outbound.spi,
                        sa.encap,
                        sa.nat_oa,
                        sa.lifetime_secs
                    );
                    ike.close(Instant::now());
                }
                Event::Warning(w) => println!("warning: {w}"),
                Event::Failed(e) => {
                    return Err(match e.hint() {
                        Some(h) => format!("{e} (hint: {h})"),
                        None => e.to_string(),
                    }
                    .into());
                }
                Event::Closed => {
                    while let Some(t) = ike.poll_transmit(Instant::now()) {
                        let mut d = if t.port == IkePort::NatT {
                            vec![0u8; 4]
                        } else {
                            Vec::new()
                        };
                        d.extend_from_slice(&t.data);
                        let s = if t.port == IkePort::NatT {
                            &s4500
                        } else {
                            &s500
                        };
                        s.send_to(
                            &d,
                            (server, if t.port == IkePort::NatT { 4500 } else { 500 }),
                        )?;
                    }
                    println!(
                        "{:>7.3} closed (deletes sent)",
                        start.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                other => println!("event: {other:?}"),
            }
        }
        if now > deadline {
            return Err("no esp sa within 60 s".into());
        }
        if ike.poll_timeout().is_some_and(|t| t <= now) {
            ike.handle_timeout(now);
        }
        for (sock, port) in [(&s500, IkePort::Ike), (&s4500, IkePort::NatT)] {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                let d = &buf[..n];
                match port {
                    IkePort::NatT if d == [0xFF] => {}
                    IkePort::NatT if d.len() >= 4 && d[..4] == [0, 0, 0, 0] => {
                        ike.handle_datagram(Instant::now(), port, &d[4..])
                    }
                    IkePort::NatT => {} // ESP: not handled here
                    IkePort::Ike => ike.handle_datagram(Instant::now(), port, d),
                }
            }
        }
    }
}
