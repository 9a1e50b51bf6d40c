//! Attribute-value pairs (RFC 2661 section 4, RFC 3145) and AVP hiding (RFC 2661 section 4.3).

use crate::Error;
use crate::header::read_u16;

const M_BIT: u16 = 0x8000;
const H_BIT: u16 = 0x4000;
const LEN_MASK: u16 = 0x03ff;
/// Length of an AVP header (flags/length, vendor id, attribute type).
pub const AVP_HEADER_LEN: usize = 6;
/// Largest AVP (the length field has 10 bits).
pub const MAX_AVP_LEN: usize = 1023;

/// Attribute type numbers of the IETF (vendor 0) AVPs this crate knows.
#[allow(missing_docs)]
pub mod attr {
    pub const MESSAGE_TYPE: u16 = 0;
    pub const RESULT_CODE: u16 = 1;
    pub const PROTOCOL_VERSION: u16 = 2;
    pub const FRAMING_CAPABILITIES: u16 = 3;
    pub const BEARER_CAPABILITIES: u16 = 4;
    pub const TIE_BREAKER: u16 = 5;
    pub const FIRMWARE_REVISION: u16 = 6;
    pub const HOST_NAME: u16 = 7;
    pub const VENDOR_NAME: u16 = 8;
    pub const ASSIGNED_TUNNEL_ID: u16 = 9;
    pub const RECEIVE_WINDOW_SIZE: u16 = 10;
    pub const CHALLENGE: u16 = 11;
    pub const Q931_CAUSE: u16 = 12;
    pub const CHALLENGE_RESPONSE: u16 = 13;
    pub const ASSIGNED_SESSION_ID: u16 = 14;
    pub const CALL_SERIAL_NUMBER: u16 = 15;
    pub const MINIMUM_BPS: u16 = 16;
    pub const MAXIMUM_BPS: u16 = 17;
    pub const BEARER_TYPE: u16 = 18;
    pub const FRAMING_TYPE: u16 = 19;
    pub const CALLED_NUMBER: u16 = 21;
    pub const CALLING_NUMBER: u16 = 22;
    pub const SUB_ADDRESS: u16 = 23;
    pub const TX_CONNECT_SPEED: u16 = 24;
    pub const PHYSICAL_CHANNEL_ID: u16 = 25;
    pub const INITIAL_RECEIVED_LCP_CONFREQ: u16 = 26;
    pub const LAST_SENT_LCP_CONFREQ: u16 = 27;
    pub const LAST_RECEIVED_LCP_CONFREQ: u16 = 28;
    pub const PROXY_AUTHEN_TYPE: u16 = 29;
    pub const PROXY_AUTHEN_NAME: u16 = 30;
    pub const PROXY_AUTHEN_CHALLENGE: u16 = 31;
    pub const PROXY_AUTHEN_ID: u16 = 32;
    pub const PROXY_AUTHEN_RESPONSE: u16 = 33;
    pub const CALL_ERRORS: u16 = 34;
    pub const ACCM: u16 = 35;
    pub const RANDOM_VECTOR: u16 = 36;
    pub const PRIVATE_GROUP_ID: u16 = 37;
    pub const RX_CONNECT_SPEED: u16 = 38;
    pub const SEQUENCING_REQUIRED: u16 = 39;
    pub const PPP_DISCONNECT_CAUSE: u16 = 46;
}

/// Result Code AVP: result, optional error code, optional message (RFC 2661 section 4.4.2).
///
/// The short form (result only) is what MikroTik sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultCode {
    /// Result code (meaning depends on StopCCN vs CDN).
    pub result: u16,
    /// General error code, when present.
    pub error: Option<u16>,
    /// Human-readable error message, when present.
    pub message: Option<String>,
}

impl ResultCode {
    /// A result code without error code or message.
    #[must_use]
    pub fn new(result: u16) -> Self {
        ResultCode {
            result,
            error: None,
            message: None,
        }
    }

    /// A result code with an error code and an optional message.
    #[must_use]
    pub fn with_error(result: u16, error: u16, message: Option<&str>) -> Self {
        ResultCode {
            result,
            error: Some(error),
            message: message.map(str::to_owned),
        }
    }
}

/// Q.931 Cause Code AVP (RFC 2661 section 4.4.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Q931Cause {
    /// Q.931 cause value.
    pub cause: u16,
    /// Q.931 message type the cause came with.
    pub msg_type: u8,
    /// Advisory text, when present.
    pub advisory: Option<String>,
}

/// PPP Disconnect Cause Code AVP (RFC 3145).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppDisconnectCause {
    /// Disconnect code (0 = no information, 1 = administrative, 3 = normal LCP termination, ...).
    pub code: u16,
    /// PPP control protocol number the code refers to (0 for global errors).
    pub protocol: u16,
    /// Direction: 0 global, 1 at the peer, 2 at the local end (as seen by the sender).
    pub direction: u8,
    /// Message text (may be empty).
    pub message: String,
}

/// Call Errors AVP counters (RFC 2661 section 4.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallErrors {
    /// CRC errors.
    pub crc: u32,
    /// Framing errors.
    pub framing: u32,
    /// Hardware overruns.
    pub hardware_overruns: u32,
    /// Buffer overruns.
    pub buffer_overruns: u32,
    /// Time-out errors.
    pub timeouts: u32,
    /// Alignment errors.
    pub alignment: u32,
}

/// One decoded AVP.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the RFC 2661 AVP of the same name
pub enum Avp {
    ResultCode(ResultCode),
    ProtocolVersion {
        version: u8,
        revision: u8,
    },
    FramingCapabilities(u32),
    BearerCapabilities(u32),
    TieBreaker([u8; 8]),
    FirmwareRevision(u16),
    HostName(String),
    VendorName(String),
    AssignedTunnelId(u16),
    ReceiveWindowSize(u16),
    Challenge(Vec<u8>),
    Q931Cause(Q931Cause),
    ChallengeResponse([u8; 16]),
    AssignedSessionId(u16),
    CallSerialNumber(u32),
    MinimumBps(u32),
    MaximumBps(u32),
    BearerType(u32),
    FramingType(u32),
    CalledNumber(String),
    CallingNumber(String),
    SubAddress(String),
    TxConnectSpeed(u32),
    PhysicalChannelId(u32),
    InitialReceivedLcpConfReq(Vec<u8>),
    LastSentLcpConfReq(Vec<u8>),
    LastReceivedLcpConfReq(Vec<u8>),
    ProxyAuthenType(u16),
    ProxyAuthenName(String),
    ProxyAuthenChallenge(Vec<u8>),
    ProxyAuthenId(u8),
    ProxyAuthenResponse(Vec<u8>),
    CallErrors(CallErrors),
    Accm {
        send: u32,
        recv: u32,
    },
    RandomVector(Vec<u8>),
    PrivateGroupId(Vec<u8>),
    RxConnectSpeed(u32),
    SequencingRequired,
    PppDisconnectCause(PppDisconnectCause),
    /// An AVP this crate does not interpret (vendor AVPs, unassigned IETF types); kept as is.
    Unknown {
        vendor_id: u16,
        attr_type: u16,
        mandatory: bool,
        value: Vec<u8>,
    },
}

fn u16_of(attr: u16, v: &[u8]) -> Result<u16, Error> {
    match v {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(Error::BadAvpValue { attr, len: v.len() }),
    }
}

fn u32_of(attr: u16, v: &[u8]) -> Result<u32, Error> {
    match v {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(Error::BadAvpValue { attr, len: v.len() }),
    }
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn be32(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

impl Avp {
    /// Decodes the value of a (not hidden) AVP.
    ///
    /// # Errors
    /// When the value length does not fit the attribute's format.
    pub fn decode(vendor_id: u16, attr_type: u16, mandatory: bool, v: &[u8]) -> Result<Avp, Error> {
        use attr::*;
        if vendor_id != 0 {
            return Ok(Avp::Unknown {
                vendor_id,
                attr_type,
                mandatory,
                value: v.to_vec(),
            });
        }
        let bad = || Error::BadAvpValue {
            attr: attr_type,
            len: v.len(),
        };
        Ok(match attr_type {
            RESULT_CODE => {
                let result = read_u16(v, 0).map_err(|_| bad())?;
                let error = match v.len() {
                    2 => None,
                    3 => return Err(bad()),
                    _ => Some(read_u16(v, 2).map_err(|_| bad())?),
                };
                let message = if v.len() > 4 {
                    Some(text(&v[4..]))
                } else {
                    None
                };
                Avp::ResultCode(ResultCode {
                    result,
                    error,
                    message,
                })
            }
            PROTOCOL_VERSION => match v {
                [version, revision] => Avp::ProtocolVersion {
                    version: *version,
                    revision: *revision,
                },
                _ => return Err(bad()),
            },
            FRAMING_CAPABILITIES => Avp::FramingCapabilities(u32_of(attr_type, v)?),
            BEARER_CAPABILITIES => Avp::BearerCapabilities(u32_of(attr_type, v)?),
            TIE_BREAKER => Avp::TieBreaker(v.try_into().map_err(|_| bad())?),
            FIRMWARE_REVISION => Avp::FirmwareRevision(u16_of(attr_type, v)?),
            HOST_NAME => Avp::HostName(text(v)),
            VENDOR_NAME => Avp::VendorName(text(v)),
            ASSIGNED_TUNNEL_ID => Avp::AssignedTunnelId(u16_of(attr_type, v)?),
            RECEIVE_WINDOW_SIZE => Avp::ReceiveWindowSize(u16_of(attr_type, v)?),
            CHALLENGE => Avp::Challenge(v.to_vec()),
            Q931_CAUSE => {
                if v.len() < 3 {
                    return Err(bad());
                }
                Avp::Q931Cause(Q931Cause {
                    cause: u16::from_be_bytes([v[0], v[1]]),
                    msg_type: v[2],
                    advisory: if v.len() > 3 {
                        Some(text(&v[3..]))
                    } else {
                        None
                    },
                })
            }
            CHALLENGE_RESPONSE => Avp::ChallengeResponse(v.try_into().map_err(|_| bad())?),
            ASSIGNED_SESSION_ID => Avp::AssignedSessionId(u16_of(attr_type, v)?),
            CALL_SERIAL_NUMBER => Avp::CallSerialNumber(u32_of(attr_type, v)?),
            MINIMUM_BPS => Avp::MinimumBps(u32_of(attr_type, v)?),
            MAXIMUM_BPS => Avp::MaximumBps(u32_of(attr_type, v)?),
            BEARER_TYPE => Avp::BearerType(u32_of(attr_type, v)?),
            FRAMING_TYPE => Avp::FramingType(u32_of(attr_type, v)?),
            CALLED_NUMBER => Avp::CalledNumber(text(v)),
            CALLING_NUMBER => Avp::CallingNumber(text(v)),
            SUB_ADDRESS => Avp::SubAddress(text(v)),
            TX_CONNECT_SPEED => Avp::TxConnectSpeed(u32_of(attr_type, v)?),
            PHYSICAL_CHANNEL_ID => Avp::PhysicalChannelId(u32_of(attr_type, v)?),
            INITIAL_RECEIVED_LCP_CONFREQ => Avp::InitialReceivedLcpConfReq(v.to_vec()),
            LAST_SENT_LCP_CONFREQ => Avp::LastSentLcpConfReq(v.to_vec()),
            LAST_RECEIVED_LCP_CONFREQ => Avp::LastReceivedLcpConfReq(v.to_vec()),
            PROXY_AUTHEN_TYPE => Avp::ProxyAuthenType(u16_of(attr_type, v)?),
            PROXY_AUTHEN_NAME => Avp::ProxyAuthenName(text(v)),
            PROXY_AUTHEN_CHALLENGE => Avp::ProxyAuthenChallenge(v.to_vec()),
            PROXY_AUTHEN_ID => Avp::ProxyAuthenId(u16_of(attr_type, v)?.to_be_bytes()[1]),
            PROXY_AUTHEN_RESPONSE => Avp::ProxyAuthenResponse(v.to_vec()),
            CALL_ERRORS => {
                if v.len() != 26 {
                    return Err(bad());
                }
                Avp::CallErrors(CallErrors {
                    crc: be32(v, 2),
                    framing: be32(v, 6),
                    hardware_overruns: be32(v, 10),
                    buffer_overruns: be32(v, 14),
                    timeouts: be32(v, 18),
                    alignment: be32(v, 22),
                })
            }
            ACCM => {
                if v.len() != 10 {
                    return Err(bad());
                }
                Avp::Accm {
                    send: be32(v, 2),
                    recv: be32(v, 6),
                }
            }
            RANDOM_VECTOR => {
                if v.is_empty() {
                    return Err(bad());
                }
                Avp::RandomVector(v.to_vec())
            }
            PRIVATE_GROUP_ID => Avp::PrivateGroupId(v.to_vec()),
            RX_CONNECT_SPEED => Avp::RxConnectSpeed(u32_of(attr_type, v)?),
            SEQUENCING_REQUIRED => {
                if !v.is_empty() {
                    return Err(bad());
                }
                Avp::SequencingRequired
            }
            PPP_DISCONNECT_CAUSE => {
                if v.len() < 5 {
                    return Err(bad());
                }
                Avp::PppDisconnectCause(PppDisconnectCause {
                    code: u16::from_be_bytes([v[0], v[1]]),
                    protocol: u16::from_be_bytes([v[2], v[3]]),
                    direction: v[4],
                    message: text(&v[5..]),
                })
            }
            _ => Avp::Unknown {
                vendor_id,
                attr_type,
                mandatory,
                value: v.to_vec(),
            },
        })
    }

    /// Vendor id and attribute type of this AVP.
    #[must_use]
    pub fn kind(&self) -> (u16, u16) {
        use attr::*;
        let t = match self {
            Avp::ResultCode(_) => RESULT_CODE,
            Avp::ProtocolVersion { .. } => PROTOCOL_VERSION,
            Avp::FramingCapabilities(_) => FRAMING_CAPABILITIES,
            Avp::BearerCapabilities(_) => BEARER_CAPABILITIES,
            Avp::TieBreaker(_) => TIE_BREAKER,
            Avp::FirmwareRevision(_) => FIRMWARE_REVISION,
            Avp::HostName(_) => HOST_NAME,
            Avp::VendorName(_) => VENDOR_NAME,
            Avp::AssignedTunnelId(_) => ASSIGNED_TUNNEL_ID,
            Avp::ReceiveWindowSize(_) => RECEIVE_WINDOW_SIZE,
            Avp::Challenge(_) => CHALLENGE,
            Avp::Q931Cause(_) => Q931_CAUSE,
            Avp::ChallengeResponse(_) => CHALLENGE_RESPONSE,
            Avp::AssignedSessionId(_) => ASSIGNED_SESSION_ID,
            Avp::CallSerialNumber(_) => CALL_SERIAL_NUMBER,
            Avp::MinimumBps(_) => MINIMUM_BPS,
            Avp::MaximumBps(_) => MAXIMUM_BPS,
            Avp::BearerType(_) => BEARER_TYPE,
            Avp::FramingType(_) => FRAMING_TYPE,
            Avp::CalledNumber(_) => CALLED_NUMBER,
            Avp::CallingNumber(_) => CALLING_NUMBER,
            Avp::SubAddress(_) => SUB_ADDRESS,
            Avp::TxConnectSpeed(_) => TX_CONNECT_SPEED,
            Avp::PhysicalChannelId(_) => PHYSICAL_CHANNEL_ID,
            Avp::InitialReceivedLcpConfReq(_) => INITIAL_RECEIVED_LCP_CONFREQ,
            Avp::LastSentLcpConfReq(_) => LAST_SENT_LCP_CONFREQ,
            Avp::LastReceivedLcpConfReq(_) => LAST_RECEIVED_LCP_CONFREQ,
            Avp::ProxyAuthenType(_) => PROXY_AUTHEN_TYPE,
            Avp::ProxyAuthenName(_) => PROXY_AUTHEN_NAME,
            Avp::ProxyAuthenChallenge(_) => PROXY_AUTHEN_CHALLENGE,
            Avp::ProxyAuthenId(_) => PROXY_AUTHEN_ID,
            Avp::ProxyAuthenResponse(_) => PROXY_AUTHEN_RESPONSE,
            Avp::CallErrors(_) => CALL_ERRORS,
            Avp::Accm { .. } => ACCM,
            Avp::RandomVector(_) => RANDOM_VECTOR,
            Avp::PrivateGroupId(_) => PRIVATE_GROUP_ID,
            Avp::RxConnectSpeed(_) => RX_CONNECT_SPEED,
            Avp::SequencingRequired => SEQUENCING_REQUIRED,
            Avp::PppDisconnectCause(_) => PPP_DISCONNECT_CAUSE,
            Avp::Unknown {
                vendor_id,
                attr_type,
                ..
            } => return (*vendor_id, *attr_type),
        };
        (0, t)
    }

    /// The M bit this AVP is sent with (RFC 2661 section 4.4; RFC 3145 for the disconnect cause).
    #[must_use]
    pub fn mandatory(&self) -> bool {
        !matches!(
            self,
            Avp::TieBreaker(_)
                | Avp::FirmwareRevision(_)
                | Avp::VendorName(_)
                | Avp::PhysicalChannelId(_)
                | Avp::InitialReceivedLcpConfReq(_)
                | Avp::LastSentLcpConfReq(_)
                | Avp::LastReceivedLcpConfReq(_)
                | Avp::ProxyAuthenType(_)
                | Avp::ProxyAuthenName(_)
                | Avp::ProxyAuthenChallenge(_)
                | Avp::ProxyAuthenId(_)
                | Avp::ProxyAuthenResponse(_)
                | Avp::PrivateGroupId(_)
                | Avp::RxConnectSpeed(_)
                | Avp::PppDisconnectCause(_)
                | Avp::Unknown {
                    mandatory: false,
                    ..
                }
        )
    }

    /// True for the AVPs this crate hides when hiding is on: identifiers and call details.
    #[must_use]
    pub fn hidden_by_default(&self) -> bool {
        matches!(
            self,
            Avp::AssignedSessionId(_)
                | Avp::CallSerialNumber(_)
                | Avp::CalledNumber(_)
                | Avp::CallingNumber(_)
                | Avp::SubAddress(_)
                | Avp::ProxyAuthenName(_)
                | Avp::ProxyAuthenChallenge(_)
                | Avp::ProxyAuthenId(_)
                | Avp::ProxyAuthenResponse(_)
        )
    }

    /// Appends the AVP's value (without header) to `out`.
    pub fn emit_value(&self, out: &mut Vec<u8>) {
        match self {
            Avp::ResultCode(r) => {
                out.extend_from_slice(&r.result.to_be_bytes());
                if r.error.is_some() || r.message.is_some() {
                    out.extend_from_slice(&r.error.unwrap_or(0).to_be_bytes());
                }
                if let Some(m) = &r.message {
                    out.extend_from_slice(m.as_bytes());
                }
            }
            Avp::ProtocolVersion { version, revision } => {
                out.extend_from_slice(&[*version, *revision])
            }
            Avp::FramingCapabilities(v)
            | Avp::BearerCapabilities(v)
            | Avp::CallSerialNumber(v)
            | Avp::MinimumBps(v)
            | Avp::MaximumBps(v)
            | Avp::BearerType(v)
            | Avp::FramingType(v)
            | Avp::TxConnectSpeed(v)
            | Avp::PhysicalChannelId(v)
            | Avp::RxConnectSpeed(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::TieBreaker(v) => out.extend_from_slice(v),
            Avp::FirmwareRevision(v)
            | Avp::AssignedTunnelId(v)
            | Avp::ReceiveWindowSize(v)
            | Avp::AssignedSessionId(v)
            | Avp::ProxyAuthenType(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::HostName(s)
            | Avp::VendorName(s)
            | Avp::CalledNumber(s)
            | Avp::CallingNumber(s)
            | Avp::SubAddress(s)
            | Avp::ProxyAuthenName(s) => out.extend_from_slice(s.as_bytes()),
            Avp::Challenge(b)
            | Avp::InitialReceivedLcpConfReq(b)
            | Avp::LastSentLcpConfReq(b)
            | Avp::LastReceivedLcpConfReq(b)
            | Avp::ProxyAuthenChallenge(b)
            | Avp::ProxyAuthenResponse(b)
            | Avp::RandomVector(b)
            | Avp::PrivateGroupId(b) => out.extend_from_slice(b),
            Avp::Q931Cause(q) => {
                out.extend_from_slice(&q.cause.to_be_bytes());
                out.push(q.msg_type);
                if let Some(a) = &q.advisory {
                    out.extend_from_slice(a.as_bytes());
                }
            }
            Avp::ChallengeResponse(b) => out.extend_from_slice(b),
            Avp::ProxyAuthenId(id) => out.extend_from_slice(&[0, *id]),
            Avp::CallErrors(c) => {
                out.extend_from_slice(&[0, 0]);
                for v in [
                    c.crc,
                    c.framing,
                    c.hardware_overruns,
                    c.buffer_overruns,
                    c.timeouts,
                    c.alignment,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            Avp::Accm { send, recv } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&send.to_be_bytes());
                out.extend_from_slice(&recv.to_be_bytes());
            }
            Avp::SequencingRequired => {}
            Avp::PppDisconnectCause(p) => {
                out.extend_from_slice(&p.code.to_be_bytes());
                out.extend_from_slice(&p.protocol.to_be_bytes());
                out.push(p.direction);
                out.extend_from_slice(p.message.as_bytes());
            }
            Avp::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }
}

/// One AVP as it sits on the wire (value still hidden if the H bit is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAvp<'a> {
    /// M bit.
    pub mandatory: bool,
    /// H bit.
    pub hidden: bool,
    /// Vendor id (0 = IETF).
    pub vendor_id: u16,
    /// Attribute type.
    pub attr_type: u16,
    /// Value bytes.
    pub value: &'a [u8],
}

/// Iterator over the raw AVPs of a control message body; stops after the first error.
#[derive(Debug, Clone)]
pub struct RawAvpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> RawAvpIter<'a> {
    /// Iterates over the AVPs in `body`.
    #[must_use]
    pub fn new(body: &'a [u8]) -> Self {
        RawAvpIter {
            rest: body,
            failed: false,
        }
    }
}

impl<'a> Iterator for RawAvpIter<'a> {
    type Item = Result<RawAvp<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let r = (|| {
            let flags = read_u16(self.rest, 0)?;
            let len = usize::from(flags & LEN_MASK);
            if len < AVP_HEADER_LEN || len > self.rest.len() {
                return Err(Error::BadAvpLength(len));
            }
            let avp = RawAvp {
                mandatory: flags & M_BIT != 0,
                hidden: flags & H_BIT != 0,
                vendor_id: read_u16(self.rest, 2)?,
                attr_type: read_u16(self.rest, 4)?,
                value: &self.rest[AVP_HEADER_LEN..len],
            };
            self.rest = &self.rest[len..];
            Ok(avp)
        })();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Appends an AVP header and value to `out`.
///
/// # Errors
/// When the value is too long for one AVP.
pub fn emit_raw(
    out: &mut Vec<u8>,
    mandatory: bool,
    hidden: bool,
    vendor_id: u16,
    attr_type: u16,
    value: &[u8],
) -> Result<(), Error> {
    let len = AVP_HEADER_LEN + value.len();
    if len > MAX_AVP_LEN {
        return Err(Error::AvpTooLong(len));
    }
    let mut flags = len as u16;
    if mandatory {
        flags |= M_BIT;
    }
    if hidden {
        flags |= H_BIT;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&vendor_id.to_be_bytes());
    out.extend_from_slice(&attr_type.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Applies the RFC 2661 section 4.3 keystream to `data` in place.
///
/// `encrypt` selects which side of the XOR feeds the next block (ciphertext either way).
fn hide_stream(
    attr_type: u16,
    secret: &[u8],
    random_vector: &[u8],
    data: &mut [u8],
    encrypt: bool,
) {
    let mut prev: Option<[u8; 16]> = None;
    for chunk in data.chunks_mut(16) {
        let b = match &prev {
            None => l2sec_crypto::md5(&[&attr_type.to_be_bytes(), secret, random_vector]),
            Some(c) => l2sec_crypto::md5(&[secret, c]),
        };
        let mut cipher = [0u8; 16];
        for (i, byte) in chunk.iter_mut().enumerate() {
            if !encrypt {
                cipher[i] = *byte;
            }
            *byte ^= b[i];
            if encrypt {
                cipher[i] = *byte;
            }
        }
        prev = Some(cipher);
    }
}

/// Hides an AVP value: original length, value, `pad` padding bytes, all XORed with the keystream.
#[must_use]
pub fn hide_value(
    attr_type: u16,
    secret: &[u8],
    random_vector: &[u8],
    value: &[u8],
    pad: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + value.len() + pad.len());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(pad);
    hide_stream(attr_type, secret, random_vector, &mut out, true);
    out
}

/// Recovers a hidden AVP value.
///
/// # Errors
/// When the decoded original length does not fit the hidden value (wrong secret, most likely).
pub fn unhide_value(
    attr_type: u16,
    secret: &[u8],
    random_vector: &[u8],
    hidden: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut buf = hidden.to_vec();
    hide_stream(attr_type, secret, random_vector, &mut buf, false);
    let len = usize::from(read_u16(&buf, 0).map_err(|_| Error::BadHiddenAvp)?);
    if len + 2 > buf.len() {
        return Err(Error::BadHiddenAvp);
    }
    buf.truncate(len + 2);
    buf.drain(..2);
    Ok(buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s() -> impl Strategy<Value = String> {
        "[ -~]{0,40}"
    }
    fn b() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    pub(crate) fn any_avp() -> impl Strategy<Value = Avp> {
        prop_oneof![
            (
                any::<u16>(),
                proptest::option::of(any::<u16>()),
                proptest::option::of(s())
            )
                .prop_map(|(r, e, m)| {
                    let m = m.filter(|x| !x.is_empty());
                    let e = if m.is_some() { Some(e.unwrap_or(0)) } else { e };
                    Avp::ResultCode(ResultCode {
                        result: r,
                        error: e,
                        message: m,
                    })
                }),
            (any::<u8>(), any::<u8>()).prop_map(|(v, r)| Avp::ProtocolVersion {
                version: v,
                revision: r
            }),
            any::<u32>().prop_map(Avp::FramingCapabilities),
            any::<u32>().prop_map(Avp::BearerCapabilities),
            any::<[u8; 8]>().prop_map(Avp::TieBreaker),
            any::<u16>().prop_map(Avp::FirmwareRevision),
            s().prop_map(Avp::HostName),
            s().prop_map(Avp::VendorName),
            any::<u16>().prop_map(Avp::AssignedTunnelId),
            any::<u16>().prop_map(Avp::ReceiveWindowSize),
            b().prop_map(Avp::Challenge),
            (
                any::<u16>(),
                any::<u8>(),
                proptest::option::of(s().prop_filter("nonempty", |x| !x.is_empty()))
            )
                .prop_map(|(c, m, a)| Avp::Q931Cause(Q931Cause {
                    cause: c,
                    msg_type: m,
                    advisory: a
                })),
            any::<[u8; 16]>().prop_map(Avp::ChallengeResponse),
            any::<u16>().prop_map(Avp::AssignedSessionId),
            any::<u32>().prop_map(Avp::CallSerialNumber),
            any::<u32>().prop_map(Avp::MinimumBps),
            any::<u32>().prop_map(Avp::MaximumBps),
            any::<u32>().prop_map(Avp::BearerType),
            any::<u32>().prop_map(Avp::FramingType),
            s().prop_map(Avp::CalledNumber),
            s().prop_map(Avp::CallingNumber),
            s().prop_map(Avp::SubAddress),
            any::<u32>().prop_map(Avp::TxConnectSpeed),
            any::<u32>().prop_map(Avp::PhysicalChannelId),
            b().prop_map(Avp::InitialReceivedLcpConfReq),
            b().prop_map(Avp::LastSentLcpConfReq),
            b().prop_map(Avp::LastReceivedLcpConfReq),
            any::<u16>().prop_map(Avp::ProxyAuthenType),
            s().prop_map(Avp::ProxyAuthenName),
            b().prop_map(Avp::ProxyAuthenChallenge),
            any::<u8>().prop_map(Avp::ProxyAuthenId),
            b().prop_map(Avp::ProxyAuthenResponse),
            any::<[u32; 6]>().prop_map(|c| Avp::CallErrors(CallErrors {
                crc: c[0],
                framing: c[1],
                hardware_overruns: c[2],
                buffer_overruns: c[3],
                timeouts: c[4],
                alignment: c[5]
            })),
            (any::<u32>(), any::<u32>()).prop_map(|(s, r)| Avp::Accm { send: s, recv: r }),
            proptest::collection::vec(any::<u8>(), 1..40).prop_map(Avp::RandomVector),
            b().prop_map(Avp::PrivateGroupId),
            any::<u32>().prop_map(Avp::RxConnectSpeed),
            Just(Avp::SequencingRequired),
            (any::<u16>(), any::<u16>(), any::<u8>(), s()).prop_map(|(c, p, d, m)| {
                Avp::PppDisconnectCause(PppDisconnectCause {
                    code: c,
                    protocol: p,
                    direction: d,
                    message: m,
                })
            }),
            (1u16.., any::<u16>(), any::<bool>(), b()).prop_map(|(v, t, m, value)| Avp::Unknown {
                vendor_id: v,
                attr_type: t,
                mandatory: m,
                value
            }),
        ]
    }

    #[test]
    fn result_code_forms() {
        // MikroTik short form: result only.
        assert_eq!(
            Avp::decode(0, 1, true, &[0, 1]).unwrap(),
            Avp::ResultCode(ResultCode::new(1))
        );
        // xl2tpd: result 2, error 6, message.
        let mut v = vec![0, 2, 0, 6];
        v.extend_from_slice(b"Invalid challenge authentication");
        assert_eq!(
            Avp::decode(0, 1, true, &v).unwrap(),
            Avp::ResultCode(ResultCode::with_error(
                2,
                6,
                Some("Invalid challenge authentication")
            ))
        );
        assert_eq!(
            Avp::decode(0, 1, true, &[0, 1, 0]),
            Err(Error::BadAvpValue { attr: 1, len: 3 })
        );
        assert_eq!(
            Avp::decode(0, 1, true, &[0]),
            Err(Error::BadAvpValue { attr: 1, len: 1 })
        );
    }

    #[test]
    fn ppp_disconnect_cause_decodes() {
        // RFC 3145: code 3 (normal LCP termination), protocol LCP 0xc021, direction 1, message.
        let v = [0, 3, 0xc0, 0x21, 1, b'b', b'y', b'e'];
        assert_eq!(
            Avp::decode(0, 46, false, &v).unwrap(),
            Avp::PppDisconnectCause(PppDisconnectCause {
                code: 3,
                protocol: 0xc021,
                direction: 1,
                message: "bye".into()
            })
        );
    }

    #[test]
    fn hidden_avp_known_keystream() {
        // The first keystream block is MD5(type || secret || RV) (RFC 2661 4.3). Expected bytes
        // computed independently (Python hashlib): MD5("\x00\x0e" "secret" "\x01\x02\x03\x04")
        // XOR the sub-format 00 02 12 34.
        let hidden = hide_value(14, b"secret", &[1, 2, 3, 4], &[0x12, 0x34], &[]);
        assert_eq!(hidden, vec![0xae, 0x89, 0x3d, 0x14]);
        assert_eq!(
            unhide_value(14, b"secret", &[1, 2, 3, 4], &hidden).unwrap(),
            vec![0x12, 0x34]
        );
    }

    #[test]
    fn hidden_avp_second_block_chains_ciphertext() {
        let value: Vec<u8> = (0..40).collect();
        let hidden = hide_value(7, b"k", b"rv", &value, &[0xaa; 5]);
        assert_eq!(hidden.len(), 47);
        let b2 = l2sec_crypto::md5(&[b"k", &hidden[..16]]);
        assert_eq!(hidden[16] ^ b2[0], value[14]);
        assert_eq!(unhide_value(7, b"k", b"rv", &hidden).unwrap(), value);
        // A wrong secret yields garbage whose length field rarely fits; never a panic.
        let _ = unhide_value(7, b"wrong", b"rv", &hidden);
    }

    #[test]
    fn raw_iter_stops_on_bad_length() {
        let mut body = Vec::new();
        emit_raw(&mut body, true, false, 0, 9, &[0, 5]).unwrap();
        body.extend_from_slice(&[0x80, 0x03, 0, 0, 0, 0]);
        let items: Vec<_> = RawAvpIter::new(&body).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(Error::BadAvpLength(3)));
    }

    proptest! {
        #[test]
        fn avp_round_trip(avp in any_avp()) {
            let mut v = Vec::new();
            avp.emit_value(&mut v);
            let (vendor, t) = avp.kind();
            let back = Avp::decode(vendor, t, avp.mandatory(), &v).unwrap();
            prop_assert_eq!(back, avp);
        }

        #[test]
        fn hide_round_trip(t in any::<u16>(), secret in b(), rv in proptest::collection::vec(any::<u8>(), 1..32),
                           value in proptest::collection::vec(any::<u8>(), 0..100), pad in b()) {
            let h = hide_value(t, &secret, &rv, &value, &pad);
            prop_assert_eq!(unhide_value(t, &secret, &rv, &h).unwrap(), value);
        }

        #[test]
        fn decode_never_panics(v in any::<u16>(), t in 0u16..50, value in b()) {
            let _ = Avp::decode(v, t, true, &value);
        }
    }
}
