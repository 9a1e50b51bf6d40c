//! End-to-end tests against the Linux server stack (libreswan with kernel ESP in transport mode,
//! xl2tpd with kernel L2TP, pppd with kernel PPP) in the lab's VM (`lab/l2sec-lab up linux`),
//! through the real `l2sec` binary. Every `up` draws fresh credentials; the tests read them from
//! the lab's `lab.env`. The VM runs under software emulation, so timings are slow but the wire
//! behaviour is the real one. Run when `L2SEC_LAB=1`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use l2sec_labutil::{LinuxLab, require_lab, topo};
use serde_json::Value;

fn lab() -> LinuxLab {
    LinuxLab::load().expect("Linux server lab not up: run `lab/l2sec-lab up linux`")
}

/// What a user of the setup-ipsec-vpn scripts puts in a profile: server, PSK, user, password.
fn profile(lab: &LinuxLab, extra_ipsec: &str, extra_ppp: &str) -> String {
    format!(
        r#"server = "{srv}"
[ipsec]
psk = "{psk}"
{extra_ipsec}
[ppp]
user = "{user}"
password = "{password}"
{extra_ppp}
[network]
interface = "l2sec0"
"#,
        srv = topo::LX_SRV,
        psk = lab.psk,
        user = lab.user,
        password = lab.password,
    )
}

/// The `detail` of every stage event of `stage`.
fn details(events: &[Value], stage: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "stage" && e["stage"] == stage)
        .filter_map(|e| e["detail"].as_str().map(str::to_string))
        .collect()
}

/// Sends `bytes` of TCP data to the VM's sink (TCP 5001 on the PPP server address) and checks
/// that the sink saw the same length and SHA-256. Returns the seconds it took.
fn transfer_to_vm(lab: &LinuxLab, ns: &str, bytes: usize) -> f64 {
    let _ = std::fs::remove_file(&lab.sink);
    let t0 = Instant::now();
    let sent = netns_ok(
        ns,
        &[
            "timeout",
            "120",
            "python3",
            "-c",
            SOURCE,
            &topo::LX_PPP_SERVER.to_string(),
            "5001",
            &bytes.to_string(),
        ],
    );
    let secs = t0.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        if let Ok(s) = std::fs::read_to_string(&lab.sink) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the VM's sink reported nothing in {}",
            lab.sink.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sent.trim(), got.trim(), "data through the tunnel differs");
    secs
}

/// The packets (one tcpdump line each) matching a filter on the namespace's uplink while
/// `during` runs.
fn capture(ns: &str, filter: &str, during: impl FnOnce()) -> Vec<String> {
    let dump = Command::new("ip")
        .args([
            "netns", "exec", ns, "timeout", "60", "tcpdump", "-n", "-l", "-i",
        ])
        .arg(format!("{ns}0"))
        .arg(filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    // tcpdump needs a moment to attach its filter
    std::thread::sleep(Duration::from_millis(700));
    during();
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let out = dump.wait_with_output().expect("tcpdump output");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// One full connection: up with the expected suites and encapsulation, address from the pool,
/// both DNS servers, ping and data through the tunnel, status, disconnect, host restored.
/// `check` sees the up event and the stage events; `encap` is a tcpdump filter that the
/// tunnel's packets must match during the ping (and `not_encap` one they must not).
fn full_cycle(
    ns: &str,
    name: &str,
    text: &str,
    pool: &str,
    encap: (&str, &str),
    check: impl FnOnce(&Value, &[Value]),
) {
    let lab = lab();
    let before = snapshot(ns);
    let scratch = Scratch::new();
    let prof = scratch.profile("lx", text);
    let mut c = connect(ns, &scratch, &prof, &[]);
    let (up, events) = c.wait_up_events(Duration::from_secs(90));
    let t_up = c.started.elapsed();
    let local = up["local"].as_str().expect("local address").to_string();
    assert!(local.starts_with(pool), "address {local} not from {pool}*");
    assert_eq!(up["peer"], topo::LX_PPP_SERVER.to_string());
    let dns: Vec<&str> = up["dns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let want: Vec<String> = topo::LX_PPP_DNS.iter().map(ToString::to_string).collect();
    assert_eq!(dns, want, "both DNS servers pppd hands out");
    let resolv = netns_ok(ns, &["cat", "/etc/resolv.conf"]);
    for d in &want {
        assert!(
            resolv.contains(d.as_str()),
            "resolv.conf lacks {d}:\n{resolv}"
        );
    }
    check(&up, &events);
    let gw = topo::LX_PPP_SERVER.to_string();
    let (filter, not_filter) = encap;
    let mut rtt = 0.0;
    let seen = capture(ns, filter, || rtt = ping_avg(ns, &gw, 5));
    assert!(
        seen.len() >= 10,
        "only {} packets matched `{filter}` during 5 pings",
        seen.len()
    );
    if !not_filter.is_empty() {
        let stray = capture(ns, not_filter, || {
            let _ = ping_avg(ns, &gw, 2);
        });
        assert!(
            stray.is_empty(),
            "packets matched `{not_filter}`: {stray:#?}"
        );
    }
    let bytes = 4 << 20;
    let secs = transfer_to_vm(&lab, ns, bytes);
    #[allow(clippy::cast_precision_loss)]
    let mbit = bytes as f64 * 8.0 / 1e6 / secs;
    figure(&format!(
        "linux/{name}: up in {:.2}s, RTT {rtt:.2} ms, 4 MiB TCP to the VM at {mbit:.1} Mbit/s (server under software emulation)",
        t_up.as_secs_f64()
    ));
    status_disconnect_restored(ns, &scratch, &mut c, &before);
}

/// The setup-ipsec-vpn default (`encapsulation=yes`): ESP in UDP 4500 although there is no NAT;
/// the default offer reaches libreswan's AES-256/SHA2-256/MODP-2048; pppd asks CHAP-MD5 first
/// and we steer it to MS-CHAPv2 and verify its authenticator response.
#[test]
fn linux_nat_t_forced_mschapv2() {
    if !require_lab("linux_nat_t_forced_mschapv2") {
        return;
    }
    let _g = serial();
    let lab = lab();
    full_cycle(
        topo::LX_CLI_NS,
        "encapsulation=yes",
        &profile(&lab, "", ""),
        "198.19.40.",
        ("udp port 4500", "ip proto 50"),
        |up, events| {
            assert_eq!(up["ike"], "aes256-sha256-modp2048", "libreswan's pick");
            let qm = details(events, "quick_mode").join(" | ");
            assert!(qm.contains("ESP in UDP 4500"), "{qm}");
            let auth = details(events, "authentication").join(" | ");
            assert!(auth.contains("MS-CHAPv2 accepted"), "{auth}");
        },
    );
}

/// `encapsulation=auto` without NAT: IKE stays on UDP 500 and ESP is raw IP protocol 50. IPv6
/// is on in this namespace and the profile asks for it: IPV6CP comes up with pppd and an
/// all-nodes ping over the link-local addresses is answered through the tunnel.
#[test]
fn linux_raw_esp_with_ipv6() {
    if !require_lab("linux_raw_esp_with_ipv6") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let ns = topo::LX_RAW_NS;
    full_cycle(
        ns,
        "raw ESP",
        &profile(&lab, "", "ipv6 = true"),
        "198.19.40.",
        ("ip proto 50", "udp port 4500"),
        |up, events| {
            assert!(up["esp"].is_string(), "{up}");
            let qm = details(events, "quick_mode").join(" | ");
            assert!(qm.contains("raw ESP (IP protocol 50)"), "{qm}");
            let addrs = netns_ok(ns, &["ip", "-6", "addr", "show", "dev", "l2sec0"]);
            assert!(
                addrs.contains("inet6 fe80::"),
                "no link-local address:\n{addrs}"
            );
            let out = netns_ok(
                ns,
                &["ping", "-6", "-n", "-c", "2", "-W", "3", "ff02::1%l2sec0"],
            );
            assert!(
                out.contains("from fe80::"),
                "no IPv6 answer through the tunnel:\n{out}"
            );
        },
    );
}

/// Plain L2TP (no IPsec), the ISP use: full PPP through xl2tpd and pppd.
#[test]
fn linux_plain_l2tp() {
    if !require_lab("linux_plain_l2tp") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let text =
        profile(&lab, "enabled = false", "").replace(&format!("psk = \"{}\"\n", lab.psk), "");
    full_cycle(
        topo::LX_CLEAR_NS,
        "plain L2TP",
        &text,
        "198.19.40.",
        (
            "udp port 1701",
            "ip proto 50 or udp port 4500 or udp port 500",
        ),
        |up, _| assert!(up["ike"].is_null(), "{up}"),
    );
}

/// An LNS whose pppd requires CHAP-MD5 (and refuses MS-CHAP), with a profile that allows it.
#[test]
fn linux_chap_md5() {
    if !require_lab("linux_chap_md5") {
        return;
    }
    let _g = serial();
    let lab = lab();
    full_cycle(
        topo::LX_MD5_NS,
        "CHAP-MD5",
        &profile(&lab, "", "auth = [\"mschapv2\", \"chap\"]"),
        "198.19.40.1",
        ("udp port 4500", ""),
        |_, events| {
            let auth = details(events, "authentication").join(" | ");
            assert!(auth.contains("CHAP-MD5 accepted"), "{auth}");
        },
    );
}

/// An LNS that requires PAP, with a profile that allows all three methods.
#[test]
fn linux_pap() {
    if !require_lab("linux_pap") {
        return;
    }
    let _g = serial();
    let lab = lab();
    full_cycle(
        topo::LX_PAP_NS,
        "PAP",
        &profile(&lab, "", "auth = [\"mschapv2\", \"chap\", \"pap\"]"),
        "198.19.40.1",
        ("udp port 4500", ""),
        |_, events| {
            let auth = details(events, "authentication").join(" | ");
            assert!(auth.contains("PAP accepted"), "{auth}");
        },
    );
}

/// Over IPsec the default is MS-CHAPv2 only. pppd requiring CHAP-MD5 drops authentication
/// when Nak'd toward MS-CHAPv2 and ends the link: the error names what it offered and the fix.
#[test]
fn linux_md5_only_server_with_default_auth() {
    if !require_lab("linux_md5_only_server_with_default_auth") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let (code, err) = expect_failure(
        topo::LX_MD5_NS,
        &profile(&lab, "", ""),
        Duration::from_secs(60),
    );
    assert_eq!(code, 6, "stderr:\n{err}");
    let line = error_line(&err);
    assert!(line.contains("CHAP-MD5"), "what the server offered: {line}");
    assert!(line.contains("auth"), "the fix names the auth list: {line}");
}

/// Aggressive mode (opt-in, with its warning) against a libreswan conn that demands it.
#[test]
fn linux_aggressive_mode() {
    if !require_lab("linux_aggressive_mode") {
        return;
    }
    let _g = serial();
    let lab = lab();
    full_cycle(
        topo::LX_AGGR_NS,
        "aggressive mode",
        &profile(
            &lab,
            "aggressive = true\nike = [\"aes256-sha256-modp2048\"]",
            "",
        ),
        "198.19.40.",
        ("udp port 4500", ""),
        |up, events| {
            assert_eq!(up["ike"], "aes256-sha256-modp2048");
            let warnings = events
                .iter()
                .filter(|e| {
                    e["event"] == "warning"
                        && e["message"]
                            .as_str()
                            .is_some_and(|m| m.to_lowercase().contains("aggressive"))
                })
                .count();
            assert_eq!(warnings, 1, "aggressive mode warns once: {events:?}");
        },
    );
}

/// libreswan rekeys the ESP SA itself (`rekey=yes`, 90 s lifetime, 40 s margin): its quick
/// mode comes to us as responder, with its own proposal list (AES-GCM first), and traffic flows
/// on across the change.
#[test]
fn linux_server_initiated_rekey() {
    if !require_lab("linux_server_initiated_rekey") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let ns = topo::LX_REKEY_NS;
    let before = snapshot(ns);
    let scratch = Scratch::new();
    let prof = scratch.profile("lx", &profile(&lab, "", ""));
    let mut c = connect(ns, &scratch, &prof, &[]);
    c.wait_up(Duration::from_secs(90));
    let (received, text) = pings_answered(ns, &topo::LX_PPP_SERVER.to_string(), 170, "0.5");
    // our own rekey would offer aes256-sha1 first; the server's list starts with AES-GCM
    assert!(
        c.stderr().contains("rekeyed (aes128gcm16)"),
        "no server-initiated ESP rekey within 85 s:\n{}",
        c.stderr()
    );
    figure(&format!(
        "linux/server rekey: {received}/170 pings answered across the server's ESP rekey"
    ));
    assert!(received >= 169, "traffic gap during the rekey: {text}");
    status_disconnect_restored(ns, &scratch, &mut c, &before);
}

#[test]
fn linux_wrong_psk() {
    if !require_lab("linux_wrong_psk") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let text = profile(&lab, "", "").replace(&lab.psk, "not-the-psk");
    let (code, err) = expect_failure(topo::LX_CLI_NS, &text, Duration::from_secs(90));
    assert_eq!(code, 6, "stderr:\n{err}");
    let line = error_line(&err);
    assert!(line.contains("IKE phase 1"), "{line}");
    assert!(line.to_lowercase().contains("pre-shared key"), "{line}");
}

#[test]
fn linux_wrong_password() {
    if !require_lab("linux_wrong_password") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let text = profile(&lab, "", "").replace(&lab.password, "wrong-password");
    let (code, err) = expect_failure(topo::LX_CLI_NS, &text, Duration::from_secs(90));
    assert_eq!(code, 6, "stderr:\n{err}");
    let line = error_line(&err);
    assert!(line.contains("PPP authentication"), "{line}");
    assert!(line.contains("password"), "the fix is named: {line}");
}

/// libreswan answers an unacceptable proposal with NO_PROPOSAL_CHOSEN (SoftEther stays silent):
/// the error says so at once and lists what we offered.
#[test]
fn linux_refused_proposal() {
    if !require_lab("linux_refused_proposal") {
        return;
    }
    let _g = serial();
    let lab = lab();
    let text = profile(&lab, "ike = [\"aes256-sha256-ecp384\"]", "");
    let t0 = Instant::now();
    let (code, err) = expect_failure(topo::LX_CLI_NS, &text, Duration::from_secs(60));
    assert_eq!(code, 2, "stderr:\n{err}");
    let line = error_line(&err);
    assert!(line.contains("IKE phase 1"), "{line}");
    assert!(
        line.contains("no-proposal-chosen"),
        "the server's notification: {line}"
    );
    assert!(
        line.contains("aes256-sha256-ecp384"),
        "what we offered: {line}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "a notification ends the attempt without waiting for retransmissions"
    );
}
