//! A small blocking rtnetlink client: links, addresses, routes.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlag, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use serde::{Deserialize, Serialize};

use crate::{Error, IpNet};

/// The main routing table.
pub(crate) const TABLE_MAIN: u32 = 254;

/// Most replies we accept to one request (a route dump of a busy router stays far below).
const MAX_REPLIES: usize = 1 << 20;

/// A route we add or delete: always `proto static`, unicast, in `table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RouteSpec {
    /// Destination prefix.
    pub dst: IpNet,
    /// Next hop, or none for a device route.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: u32,
    /// Routing table.
    pub table: u32,
}

/// One address on a link; `peer` makes it point-to-point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AddrSpec {
    /// Interface index.
    pub ifindex: u32,
    /// Our address.
    pub local: IpAddr,
    /// The peer's address (point-to-point).
    pub peer: Option<IpAddr>,
    /// Prefix length.
    pub prefix_len: u8,
}

/// The part of a link's state we change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkState {
    /// IFF_UP set.
    pub up: bool,
    /// MTU.
    pub mtu: u32,
}

/// Where the kernel currently sends packets for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteLookup {
    /// Next hop, if not on-link.
    pub gateway: Option<IpAddr>,
    /// Output interface.
    pub oif: u32,
    /// Route MTU metric, if set.
    pub mtu: Option<u32>,
}

/// A blocking NETLINK_ROUTE socket.
pub(crate) struct Netlink {
    sock: Socket,
    seq: u32,
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn from_route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

impl Netlink {
    /// Opens and binds a NETLINK_ROUTE socket.
    pub(crate) fn open() -> Result<Netlink, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE)
            .map_err(|e| Error::netlink("opening a netlink socket", e))?;
        sock.bind_auto()
            .map_err(|e| Error::netlink("binding a netlink socket", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::netlink("connecting a netlink socket", e))?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends one request and collects the replies until the ACK (or DONE for dumps).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;

        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let rest = &data[off..];
                let len = NetlinkBuffer::new_checked(rest)
                    .map(|b| b.length() as usize)
                    .map_err(|_| bad_reply(op))?;
                if len == 0 || len > rest.len() {
                    return Err(bad_reply(op));
                }
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
                    .map_err(|_| bad_reply(op))?;
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => {
                        if out.len() >= MAX_REPLIES {
                            return Err(bad_reply(op));
                        }
                        out.push(inner);
                    }
                    _ => {}
                }
            }
        }
    }

    /// The index of the interface `name`.
    pub(crate) fn link_index(&mut self, name: &str) -> Result<u32, Error> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let op = format!("get link {name}");
        let replies = self
            .request(RouteNetlinkMessage::GetLink(m), 0, &op)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => Error::NoSuchInterface(name.to_owned()),
                _ => Error::netlink(op.clone(), e),
            })?;
        replies
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or(Error::Protocol(op))
    }

    /// Name and state of the link `index`, or `None` when it does not exist.
    pub(crate) fn link_state(&mut self, index: u32) -> Result<Option<(String, LinkState)>, Error> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        let op = format!("get link #{index}");
        let replies = match self.request(RouteNetlinkMessage::GetLink(m), 0, &op) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(Error::netlink(op, e)),
        };
        for r in replies {
            if let RouteNetlinkMessage::NewLink(l) = r {
                let up = l.header.flags.contains(&LinkFlag::Up);
                let mut name = String::new();
                let mut mtu = 0;
                for a in &l.attributes {
                    match a {
                        LinkAttribute::IfName(n) => name.clone_from(n),
                        LinkAttribute::Mtu(m) => mtu = *m,
                        _ => {}
                    }
                }
                return Ok(Some((name, LinkState { up, mtu })));
            }
        }
        Err(Error::Protocol(op))
    }

    /// Sets the MTU and/or the up flag of link `index`.
    pub(crate) fn set_link(
        &mut self,
        index: u32,
        up: Option<bool>,
        mtu: Option<u32>,
    ) -> Result<(), io::Error> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(up) = up {
            m.header.change_mask = vec![LinkFlag::Up];
            if up {
                m.header.flags = vec![LinkFlag::Up];
            }
        }
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        self.request(RouteNetlinkMessage::SetLink(m), 0, "set link")
            .map(drop)
    }

    fn addr_msg(a: &AddrSpec) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family(a.local);
        m.header.prefix_len = a.prefix_len;
        m.header.index = a.ifindex;
        let link_local = matches!(a.local, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80);
        m.header.scope = if link_local {
            AddressScope::Link
        } else {
            AddressScope::Universe
        };
        m.attributes.push(AddressAttribute::Local(a.local));
        m.attributes
            .push(AddressAttribute::Address(a.peer.unwrap_or(a.local)));
        m
    }

    /// Adds an address; `EEXIST` when it is already there.
    pub(crate) fn addr_add(&mut self, a: &AddrSpec) -> Result<(), io::Error> {
        let m = Self::addr_msg(a);
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "add address",
        )
        .map(drop)
    }

    /// Deletes an address.
    pub(crate) fn addr_del(&mut self, a: &AddrSpec) -> Result<(), io::Error> {
        let m = Self::addr_msg(a);
        self.request(RouteNetlinkMessage::DelAddress(m), 0, "delete address")
            .map(drop)
    }

    fn route_msg(r: &RouteSpec) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: family(r.dst.addr()),
            destination_prefix_length: r.dst.prefix_len(),
            table: u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC),
            protocol: RouteProtocol::Static,
            scope: if r.gateway.is_some() {
                RouteScope::Universe
            } else {
                RouteScope::Link
            },
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        if r.dst.prefix_len() > 0 {
            m.attributes
                .push(RouteAttribute::Destination(route_addr(r.dst.addr())));
        }
        if let Some(gw) = r.gateway {
            m.attributes.push(RouteAttribute::Gateway(route_addr(gw)));
        }
        m.attributes.push(RouteAttribute::Oif(r.oif));
        m.attributes.push(RouteAttribute::Table(r.table));
        m
    }

    /// Adds a route; `EEXIST` when an identical one is already there.
    pub(crate) fn route_add(&mut self, r: &RouteSpec) -> Result<(), io::Error> {
        self.request(
            RouteNetlinkMessage::NewRoute(Self::route_msg(r)),
            NLM_F_CREATE | NLM_F_EXCL,
            "add route",
        )
        .map(drop)
    }

    /// Deletes exactly this route (protocol, gateway and interface must match).
    pub(crate) fn route_del(&mut self, r: &RouteSpec) -> Result<(), io::Error> {
        self.request(
            RouteNetlinkMessage::DelRoute(Self::route_msg(r)),
            0,
            "delete route",
        )
        .map(drop)
    }

    /// Asks the kernel how it would send a packet to `dst` right now.
    pub(crate) fn route_get(&mut self, dst: IpAddr) -> Result<Option<RouteLookup>, Error> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(dst);
        m.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        m.attributes
            .push(RouteAttribute::Destination(route_addr(dst)));
        let op = format!("get route to {dst}");
        let replies = match self.request(RouteNetlinkMessage::GetRoute(m), 0, &op) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) | Some(libc::ESRCH)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::netlink(op, e)),
        };
        for r in replies {
            if let RouteNetlinkMessage::NewRoute(rm) = r {
                if rm.header.kind != RouteType::Unicast {
                    return Ok(None);
                }
                let mut out = RouteLookup {
                    gateway: None,
                    oif: 0,
                    mtu: None,
                };
                for a in &rm.attributes {
                    match a {
                        RouteAttribute::Gateway(g) => out.gateway = from_route_addr(g),
                        RouteAttribute::Oif(i) => out.oif = *i,
                        RouteAttribute::Metrics(ms) => {
                            for x in ms {
                                if let RouteMetric::Mtu(v) = x {
                                    out.mtu = Some(*v);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                return Ok((out.oif != 0).then_some(out));
            }
        }
        Err(Error::Protocol(op))
    }
}

fn bad_reply(op: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed netlink reply to {op}"),
    )
}
