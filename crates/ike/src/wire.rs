//! ISAKMP wire format (RFC 2408, RFC 2407, RFC 3947): a checked zero-copy view of the header,
//! a bounded payload iterator, and owned payload representations with `parse`/`emit`.

use crate::Error;

/// Length of the ISAKMP header.
pub const HEADER_LEN: usize = 28;
/// Largest message we accept or build.
pub const MAX_MESSAGE_LEN: usize = 65_535;
/// Most payloads one message may carry.
pub const MAX_PAYLOADS: usize = 64;
const MAX_PROPOSALS: usize = 64;
const MAX_ATTRIBUTES: usize = 64;

/// ISAKMP version 1.0 as carried in the header.
pub const VERSION_1_0: u8 = 0x10;

/// Exchange types.
pub mod exchange {
    /// Identity Protection (main mode).
    pub const MAIN: u8 = 2;
    /// Aggressive mode.
    pub const AGGRESSIVE: u8 = 4;
    /// Informational.
    pub const INFORMATIONAL: u8 = 5;
    /// Quick mode.
    pub const QUICK: u8 = 32;
}

/// Header flag bits.
pub mod flags {
    /// Payloads after the header are encrypted.
    pub const ENCRYPTION: u8 = 0x01;
    /// Commit bit.
    pub const COMMIT: u8 = 0x02;
    /// Authentication-only bit.
    pub const AUTH_ONLY: u8 = 0x04;
}

/// Payload type numbers.
pub mod payload_type {
    /// No next payload.
    pub const NONE: u8 = 0;
    /// Security association.
    pub const SA: u8 = 1;
    /// Proposal (inside SA).
    pub const PROPOSAL: u8 = 2;
    /// Transform (inside a proposal).
    pub const TRANSFORM: u8 = 3;
    /// Key exchange.
    pub const KE: u8 = 4;
    /// Identification.
    pub const ID: u8 = 5;
    /// Certificate.
    pub const CERT: u8 = 6;
    /// Certificate request.
    pub const CERT_REQ: u8 = 7;
    /// Hash.
    pub const HASH: u8 = 8;
    /// Signature.
    pub const SIG: u8 = 9;
    /// Nonce.
    pub const NONCE: u8 = 10;
    /// Notification.
    pub const NOTIFY: u8 = 11;
    /// Delete.
    pub const DELETE: u8 = 12;
    /// Vendor ID.
    pub const VENDOR_ID: u8 = 13;
    /// NAT discovery (RFC 3947).
    pub const NAT_D: u8 = 20;
    /// NAT original address (RFC 3947).
    pub const NAT_OA: u8 = 21;
    /// NAT discovery (drafts 02/03).
    pub const NAT_D_DRAFT: u8 = 130;
    /// NAT original address (drafts 02/03).
    pub const NAT_OA_DRAFT: u8 = 131;
}

/// Protocol identifiers (IPsec DOI).
pub mod protocol {
    /// ISAKMP.
    pub const ISAKMP: u8 = 1;
    /// IPsec AH.
    pub const AH: u8 = 2;
    /// IPsec ESP.
    pub const ESP: u8 = 3;
}

/// Identification types (RFC 2407 4.6.2.1).
pub mod id_type {
    /// IPv4 address.
    pub const IPV4_ADDR: u8 = 1;
    /// Fully qualified domain name.
    pub const FQDN: u8 = 2;
    /// user@fqdn.
    pub const USER_FQDN: u8 = 3;
    /// IPv4 subnet.
    pub const IPV4_ADDR_SUBNET: u8 = 4;
    /// IPv6 address.
    pub const IPV6_ADDR: u8 = 5;
    /// DER-encoded X.500 distinguished name.
    pub const DER_ASN1_DN: u8 = 9;
    /// Opaque key identifier.
    pub const KEY_ID: u8 = 11;
}

/// Notify message types used by IKEv1.
pub mod notify_type {
    /// INVALID-PAYLOAD-TYPE.
    pub const INVALID_PAYLOAD_TYPE: u16 = 1;
    /// INVALID-COOKIE.
    pub const INVALID_COOKIE: u16 = 4;
    /// INVALID-EXCHANGE-TYPE.
    pub const INVALID_EXCHANGE_TYPE: u16 = 7;
    /// INVALID-MESSAGE-ID.
    pub const INVALID_MESSAGE_ID: u16 = 9;
    /// NO-PROPOSAL-CHOSEN.
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    /// PAYLOAD-MALFORMED.
    pub const PAYLOAD_MALFORMED: u16 = 16;
    /// INVALID-KEY-INFORMATION.
    pub const INVALID_KEY_INFORMATION: u16 = 17;
    /// INVALID-ID-INFORMATION.
    pub const INVALID_ID_INFORMATION: u16 = 18;
    /// INVALID-HASH-INFORMATION.
    pub const INVALID_HASH_INFORMATION: u16 = 23;
    /// AUTHENTICATION-FAILED.
    pub const AUTHENTICATION_FAILED: u16 = 24;
    /// INVALID-SIGNATURE.
    pub const INVALID_SIGNATURE: u16 = 25;
    /// RESPONDER-LIFETIME (RFC 2407).
    pub const RESPONDER_LIFETIME: u16 = 24576;
    /// REPLAY-STATUS (RFC 2407).
    pub const REPLAY_STATUS: u16 = 24577;
    /// INITIAL-CONTACT (RFC 2407).
    pub const INITIAL_CONTACT: u16 = 24578;
    /// DPD R-U-THERE (RFC 3706).
    pub const R_U_THERE: u16 = 36136;
    /// DPD R-U-THERE-ACK (RFC 3706).
    pub const R_U_THERE_ACK: u16 = 36137;
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn malformed(what: &'static str) -> Error {
    Error::Malformed(what)
}

/// A checked, zero-copy view of an ISAKMP message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer after checking the header and that the length field fits the buffer.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the buffer is too short, the version is not 1.x or the
    /// length field disagrees with the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(malformed("isakmp header truncated"));
        }
        if b[17] >> 4 != 1 {
            return Err(malformed("isakmp major version is not 1"));
        }
        let len = be32(&b[24..28]) as usize;
        if len < HEADER_LEN || len > b.len() || len > MAX_MESSAGE_LEN {
            return Err(malformed("isakmp length field out of range"));
        }
        Ok(Self { buffer })
    }

    /// Initiator cookie.
    #[must_use]
    pub fn initiator_cookie(&self) -> [u8; 8] {
        let mut c = [0; 8];
        c.copy_from_slice(&self.buffer.as_ref()[0..8]);
        c
    }

    /// Responder cookie.
    #[must_use]
    pub fn responder_cookie(&self) -> [u8; 8] {
        let mut c = [0; 8];
        c.copy_from_slice(&self.buffer.as_ref()[8..16]);
        c
    }

    /// Type of the first payload.
    #[must_use]
    pub fn next_payload(&self) -> u8 {
        self.buffer.as_ref()[16]
    }

    /// Version byte (0x10 for 1.0).
    #[must_use]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[17]
    }

    /// Exchange type.
    #[must_use]
    pub fn exchange(&self) -> u8 {
        self.buffer.as_ref()[18]
    }

    /// Flags.
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[19]
    }

    /// Message ID.
    #[must_use]
    pub fn message_id(&self) -> u32 {
        be32(&self.buffer.as_ref()[20..24])
    }

    /// Length field (whole message).
    #[must_use]
    pub fn length(&self) -> usize {
        be32(&self.buffer.as_ref()[24..28]) as usize
    }

    /// Header fields as an owned value.
    #[must_use]
    pub fn header(&self) -> Header {
        Header {
            initiator_cookie: self.initiator_cookie(),
            responder_cookie: self.responder_cookie(),
            next_payload: self.next_payload(),
            exchange: self.exchange(),
            flags: self.flags(),
            message_id: self.message_id(),
        }
    }

    /// The bytes after the header, up to the length field (ciphertext if encrypted).
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length()]
    }
}

/// Owned ISAKMP header fields (the version is always 1.0; the length is computed on emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Initiator cookie.
    pub initiator_cookie: [u8; 8],
    /// Responder cookie.
    pub responder_cookie: [u8; 8],
    /// Type of the first payload.
    pub next_payload: u8,
    /// Exchange type.
    pub exchange: u8,
    /// Flags.
    pub flags: u8,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// Writes the 28-byte header for a message of `total_len` bytes.
    pub fn emit(&self, total_len: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_cookie);
        out.extend_from_slice(&self.responder_cookie);
        out.push(self.next_payload);
        out.push(VERSION_1_0);
        out.push(self.exchange);
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&(total_len as u32).to_be_bytes());
    }
}

/// One payload as found in a message: its type, body (without the generic header) and the
/// byte range of the whole payload (with the generic header) within the iterated buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// Payload type.
    pub kind: u8,
    /// Body without the 4-byte generic header.
    pub body: &'a [u8],
    /// Offset of the generic header in the iterated buffer.
    pub start: usize,
    /// Offset just past the payload.
    pub end: usize,
}

/// Bounded iterator over a chain of generic payloads.
#[derive(Debug, Clone)]
pub struct PayloadIter<'a> {
    data: &'a [u8],
    offset: usize,
    next: u8,
    count: usize,
    failed: bool,
}

impl<'a> PayloadIter<'a> {
    /// Iterates over payloads in `data`, the first of type `first`. Trailing bytes after the
    /// last payload (CBC padding) are ignored.
    #[must_use]
    pub fn new(data: &'a [u8], first: u8) -> Self {
        Self {
            data,
            offset: 0,
            next: first,
            count: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = Result<RawPayload<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next == payload_type::NONE {
            return None;
        }
        self.count += 1;
        let rest = &self.data[self.offset..];
        let fail = |s: &mut Self, what| {
            s.failed = true;
            Some(Err(malformed(what)))
        };
        if self.count > MAX_PAYLOADS {
            return fail(self, "too many payloads");
        }
        if rest.len() < 4 {
            return fail(self, "payload header truncated");
        }
        let len = be16(&rest[2..4]) as usize;
        if len < 4 || len > rest.len() {
            return fail(self, "payload length out of range");
        }
        let kind = self.next;
        let start = self.offset;
        self.next = rest[0];
        self.offset += len;
        Some(Ok(RawPayload {
            kind,
            body: &rest[4..len],
            start,
            end: start + len,
        }))
    }
}

/// Collects all payloads of a chain, failing on the first malformed one.
///
/// # Errors
/// [`Error::Malformed`] for a broken chain.
pub fn collect_payloads(data: &[u8], first: u8) -> Result<Vec<RawPayload<'_>>, Error> {
    PayloadIter::new(data, first).collect()
}

/// Value of a data attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// TV form (AF bit set): a 16-bit value.
    Basic(u16),
    /// TLV form: variable-length value.
    Variable(Vec<u8>),
}

/// A data attribute (RFC 2408 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type (without the AF bit).
    pub kind: u16,
    /// Value.
    pub value: AttrValue,
}

impl Attribute {
    /// A basic (TV) attribute.
    #[must_use]
    pub fn basic(kind: u16, value: u16) -> Self {
        Self {
            kind,
            value: AttrValue::Basic(value),
        }
    }

    /// A number attribute: basic when it fits 16 bits, otherwise variable with 4 bytes.
    #[must_use]
    pub fn number(kind: u16, value: u64) -> Self {
        if let Ok(v) = u16::try_from(value) {
            Self::basic(kind, v)
        } else if let Ok(v) = u32::try_from(value) {
            Self {
                kind,
                value: AttrValue::Variable(v.to_be_bytes().to_vec()),
            }
        } else {
            Self {
                kind,
                value: AttrValue::Variable(value.to_be_bytes().to_vec()),
            }
        }
    }

    /// The value as an integer (variable values up to 8 bytes).
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttrValue::Basic(v) => Some(u64::from(*v)),
            AttrValue::Variable(b) if b.len() <= 8 => {
                Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            }
            AttrValue::Variable(_) => None,
        }
    }

    /// Parses a list of attributes filling `data` exactly.
    ///
    /// # Errors
    /// [`Error::Malformed`] for truncated attributes or too many of them.
    pub fn parse_list(mut data: &[u8]) -> Result<Vec<Self>, Error> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if out.len() >= MAX_ATTRIBUTES {
                return Err(malformed("too many attributes"));
            }
            if data.len() < 4 {
                return Err(malformed("attribute truncated"));
            }
            let t = be16(&data[0..2]);
            let v = be16(&data[2..4]);
            if t & 0x8000 != 0 {
                out.push(Self::basic(t & 0x7fff, v));
                data = &data[4..];
            } else {
                let len = v as usize;
                if data.len() < 4 + len {
                    return Err(malformed("attribute value truncated"));
                }
                out.push(Self {
                    kind: t,
                    value: AttrValue::Variable(data[4..4 + len].to_vec()),
                });
                data = &data[4 + len..];
            }
        }
        Ok(out)
    }

    /// Appends the encoded attribute.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match &self.value {
            AttrValue::Basic(v) => {
                out.extend_from_slice(&(self.kind | 0x8000).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttrValue::Variable(b) => {
                out.extend_from_slice(&(self.kind & 0x7fff).to_be_bytes());
                out.extend_from_slice(&(b.len() as u16).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
}

/// A transform inside a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Transform number.
    pub number: u8,
    /// Transform id (KEY_IKE = 1 for ISAKMP, the ESP transform id for ESP).
    pub id: u8,
    /// SA attributes.
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// The first attribute of `kind`.
    #[must_use]
    pub fn attr(&self, kind: u16) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }
}

/// A proposal inside an SA payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number.
    pub number: u8,
    /// Protocol id (ISAKMP 1, ESP 3).
    pub protocol: u8,
    /// SPI (empty or 16 bytes for ISAKMP, 4 bytes for ESP).
    pub spi: Vec<u8>,
    /// Transforms, alternatives in preference order.
    pub transforms: Vec<Transform>,
}

/// Security Association payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    /// Domain of interpretation (1 = IPsec).
    pub doi: u32,
    /// Situation (1 = SIT_IDENTITY_ONLY).
    pub situation: u32,
    /// Proposals.
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    /// Parses an SA payload body.
    ///
    /// # Errors
    /// [`Error::Malformed`] for any structural problem.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.len() < 8 {
            return Err(malformed("sa payload truncated"));
        }
        let doi = be32(&body[0..4]);
        let situation = be32(&body[4..8]);
        let mut proposals = Vec::new();
        let mut next = payload_type::PROPOSAL;
        let mut data = &body[8..];
        if doi == 1 && situation & 1 == 0 {
            return Err(malformed("unsupported sa situation"));
        }
        while next != payload_type::NONE {
            if next != payload_type::PROPOSAL {
                return Err(malformed("non-proposal inside sa payload"));
            }
            if proposals.len() >= MAX_PROPOSALS {
                return Err(malformed("too many proposals"));
            }
            if data.len() < 8 {
                return Err(malformed("proposal truncated"));
            }
            let len = be16(&data[2..4]) as usize;
            if len < 8 || len > data.len() {
                return Err(malformed("proposal length out of range"));
            }
            next = data[0];
            let p = &data[..len];
            let number = p[4];
            let protocol = p[5];
            let spi_len = p[6] as usize;
            let count = p[7] as usize;
            if 8 + spi_len > len {
                return Err(malformed("proposal spi truncated"));
            }
            let spi = p[8..8 + spi_len].to_vec();
            let mut tdata = &p[8 + spi_len..];
            let mut transforms = Vec::new();
            let mut tnext = if count == 0 {
                payload_type::NONE
            } else {
                payload_type::TRANSFORM
            };
            while tnext != payload_type::NONE {
                if tnext != payload_type::TRANSFORM {
                    return Err(malformed("non-transform inside proposal"));
                }
                if tdata.len() < 8 {
                    return Err(malformed("transform truncated"));
                }
                let tlen = be16(&tdata[2..4]) as usize;
                if tlen < 8 || tlen > tdata.len() {
                    return Err(malformed("transform length out of range"));
                }
                tnext = tdata[0];
                transforms.push(Transform {
                    number: tdata[4],
                    id: tdata[5],
                    attributes: Attribute::parse_list(&tdata[8..tlen])?,
                });
                tdata = &tdata[tlen..];
            }
            if transforms.len() != count {
                return Err(malformed("transform count mismatch"));
            }
            proposals.push(Proposal {
                number,
                protocol,
                spi,
                transforms,
            });
            data = &data[len..];
        }
        Ok(Self {
            doi,
            situation,
            proposals,
        })
    }

    /// Appends the encoded body (without the generic payload header).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.extend_from_slice(&self.situation.to_be_bytes());
        for (i, p) in self.proposals.iter().enumerate() {
            let start = out.len();
            let last = i + 1 == self.proposals.len();
            out.push(if last {
                payload_type::NONE
            } else {
                payload_type::PROPOSAL
            });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            out.push(p.number);
            out.push(p.protocol);
            out.push(p.spi.len() as u8);
            out.push(p.transforms.len() as u8);
            out.extend_from_slice(&p.spi);
            for (j, t) in p.transforms.iter().enumerate() {
                let tstart = out.len();
                let tlast = j + 1 == p.transforms.len();
                out.push(if tlast {
                    payload_type::NONE
                } else {
                    payload_type::TRANSFORM
                });
                out.push(0);
                out.extend_from_slice(&[0, 0]);
                out.push(t.number);
                out.push(t.id);
                out.extend_from_slice(&[0, 0]);
                for a in &t.attributes {
                    a.emit(out);
                }
                let tlen = (out.len() - tstart) as u16;
                out[tstart + 2..tstart + 4].copy_from_slice(&tlen.to_be_bytes());
            }
            let plen = (out.len() - start) as u16;
            out[start + 2..start + 4].copy_from_slice(&plen.to_be_bytes());
        }
    }
}

/// Identification payload body (RFC 2407 4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    /// Identification type.
    pub id_type: u8,
    /// IP protocol (0 = any).
    pub protocol: u8,
    /// Port (0 = any).
    pub port: u16,
    /// Identification data.
    pub data: Vec<u8>,
}

impl IdPayload {
    /// Parses an ID payload body.
    ///
    /// # Errors
    /// [`Error::Malformed`] when shorter than 4 bytes.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.len() < 4 {
            return Err(malformed("id payload truncated"));
        }
        Ok(Self {
            id_type: body[0],
            protocol: body[1],
            port: be16(&body[2..4]),
            data: body[4..].to_vec(),
        })
    }

    /// Appends the encoded body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.id_type);
        out.push(self.protocol);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.data);
    }

    /// Encoded body as a vector (the `IDii_b`/`IDir_b` of RFC 2409).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.data.len());
        self.emit(&mut v);
        v
    }
}

/// Notification payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    /// Domain of interpretation.
    pub doi: u32,
    /// Protocol id.
    pub protocol: u8,
    /// Notify message type.
    pub kind: u16,
    /// SPI.
    pub spi: Vec<u8>,
    /// Notification data.
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// Parses a notification body.
    ///
    /// # Errors
    /// [`Error::Malformed`] when truncated.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.len() < 8 {
            return Err(malformed("notify payload truncated"));
        }
        let spi_len = body[5] as usize;
        if body.len() < 8 + spi_len {
            return Err(malformed("notify spi truncated"));
        }
        Ok(Self {
            doi: be32(&body[0..4]),
            protocol: body[4],
            kind: be16(&body[6..8]),
            spi: body[8..8 + spi_len].to_vec(),
            data: body[8 + spi_len..].to_vec(),
        })
    }

    /// Appends the encoded body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.push(self.protocol);
        out.push(self.spi.len() as u8);
        out.extend_from_slice(&self.kind.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }
}

/// Delete payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    /// Domain of interpretation.
    pub doi: u32,
    /// Protocol id.
    pub protocol: u8,
    /// SPI size in bytes (16 for ISAKMP, 4 for ESP).
    pub spi_size: u8,
    /// SPIs, each `spi_size` bytes.
    pub spis: Vec<Vec<u8>>,
}

impl DeletePayload {
    /// Parses a delete body.
    ///
    /// # Errors
    /// [`Error::Malformed`] when truncated or the SPI count disagrees with the length.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.len() < 8 {
            return Err(malformed("delete payload truncated"));
        }
        let spi_size = body[5];
        let n = be16(&body[6..8]) as usize;
        let rest = &body[8..];
        if spi_size == 0 && n > 0 || rest.len() != n * spi_size as usize {
            return Err(malformed("delete spi list length mismatch"));
        }
        let spis = if spi_size == 0 {
            Vec::new()
        } else {
            rest.chunks(spi_size as usize).map(<[u8]>::to_vec).collect()
        };
        Ok(Self {
            doi: be32(&body[0..4]),
            protocol: body[4],
            spi_size,
            spis,
        })
    }

    /// Appends the encoded body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.push(self.protocol);
        out.push(self.spi_size);
        out.extend_from_slice(&(self.spis.len() as u16).to_be_bytes());
        for s in &self.spis {
            out.extend_from_slice(s);
        }
    }
}

/// Certificate (or certificate request) payload body: encoding + data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    /// Certificate encoding (4 = X.509 signature).
    pub encoding: u8,
    /// Certificate data (DER), or for a request the DER DN of an acceptable CA (may be empty).
    pub data: Vec<u8>,
}

/// X.509 certificate - signature encoding.
pub const CERT_X509_SIGNATURE: u8 = 4;

impl CertPayload {
    /// Parses a CERT or CR body.
    ///
    /// # Errors
    /// [`Error::Malformed`] when empty.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        match body.split_first() {
            Some((e, d)) => Ok(Self {
                encoding: *e,
                data: d.to_vec(),
            }),
            None => Err(malformed("certificate payload empty")),
        }
    }

    /// Appends the encoded body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.encoding);
        out.extend_from_slice(&self.data);
    }
}

/// NAT original address payload body (RFC 3947 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatOaPayload {
    /// The original address.
    pub addr: std::net::IpAddr,
}

impl NatOaPayload {
    /// Parses a NAT-OA body.
    ///
    /// # Errors
    /// [`Error::Malformed`] for an unknown ID type or wrong length.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.len() < 4 {
            return Err(malformed("nat-oa payload truncated"));
        }
        let a = &body[4..];
        let addr = match (body[0], a.len()) {
            (id_type::IPV4_ADDR, 4) => std::net::IpAddr::from([a[0], a[1], a[2], a[3]]),
            (id_type::IPV6_ADDR, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(a);
                std::net::IpAddr::from(b)
            }
            _ => return Err(malformed("nat-oa address type or length invalid")),
        };
        Ok(Self { addr })
    }

    /// Appends the encoded body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self.addr {
            std::net::IpAddr::V4(a) => {
                out.extend_from_slice(&[id_type::IPV4_ADDR, 0, 0, 0]);
                out.extend_from_slice(&a.octets());
            }
            std::net::IpAddr::V6(a) => {
                out.extend_from_slice(&[id_type::IPV6_ADDR, 0, 0, 0]);
                out.extend_from_slice(&a.octets());
            }
        }
    }
}

/// An owned payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security association.
    Sa(SaPayload),
    /// Key exchange data.
    Ke(Vec<u8>),
    /// Identification.
    Id(IdPayload),
    /// Certificate.
    Cert(CertPayload),
    /// Certificate request.
    CertReq(CertPayload),
    /// Hash data.
    Hash(Vec<u8>),
    /// Signature data.
    Sig(Vec<u8>),
    /// Nonce data.
    Nonce(Vec<u8>),
    /// Notification.
    Notify(NotifyPayload),
    /// Delete.
    Delete(DeletePayload),
    /// Vendor ID.
    VendorId(Vec<u8>),
    /// NAT discovery hash; `draft` selects payload type 130 instead of 20.
    NatD {
        /// Draft (130) instead of RFC 3947 (20) numbering.
        draft: bool,
        /// Hash.
        hash: Vec<u8>,
    },
    /// NAT original address; `draft` selects payload type 131 instead of 21.
    NatOa {
        /// Draft (131) instead of RFC 3947 (21) numbering.
        draft: bool,
        /// Address.
        oa: NatOaPayload,
    },
    /// Any other payload, kept as bytes.
    Unknown {
        /// Payload type.
        kind: u8,
        /// Body.
        data: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number.
    #[must_use]
    pub fn kind(&self) -> u8 {
        use payload_type as t;
        match self {
            Payload::Sa(_) => t::SA,
            Payload::Ke(_) => t::KE,
            Payload::Id(_) => t::ID,
            Payload::Cert(_) => t::CERT,
            Payload::CertReq(_) => t::CERT_REQ,
            Payload::Hash(_) => t::HASH,
            Payload::Sig(_) => t::SIG,
            Payload::Nonce(_) => t::NONCE,
            Payload::Notify(_) => t::NOTIFY,
            Payload::Delete(_) => t::DELETE,
            Payload::VendorId(_) => t::VENDOR_ID,
            Payload::NatD { draft: false, .. } => t::NAT_D,
            Payload::NatD { draft: true, .. } => t::NAT_D_DRAFT,
            Payload::NatOa { draft: false, .. } => t::NAT_OA,
            Payload::NatOa { draft: true, .. } => t::NAT_OA_DRAFT,
            Payload::Unknown { kind, .. } => *kind,
        }
    }

    /// Parses a raw payload into its owned form.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the body is invalid for its type.
    pub fn parse(raw: &RawPayload<'_>) -> Result<Self, Error> {
        use payload_type as t;
        let b = raw.body;
        Ok(match raw.kind {
            t::SA => Payload::Sa(SaPayload::parse(b)?),
            t::KE => Payload::Ke(b.to_vec()),
            t::ID => Payload::Id(IdPayload::parse(b)?),
            t::CERT => Payload::Cert(CertPayload::parse(b)?),
            t::CERT_REQ => Payload::CertReq(CertPayload::parse(b)?),
            t::HASH => Payload::Hash(b.to_vec()),
            t::SIG => Payload::Sig(b.to_vec()),
            t::NONCE => Payload::Nonce(b.to_vec()),
            t::NOTIFY => Payload::Notify(NotifyPayload::parse(b)?),
            t::DELETE => Payload::Delete(DeletePayload::parse(b)?),
            t::VENDOR_ID => Payload::VendorId(b.to_vec()),
            t::NAT_D | t::NAT_D_DRAFT => Payload::NatD {
                draft: raw.kind == t::NAT_D_DRAFT,
                hash: b.to_vec(),
            },
            t::NAT_OA | t::NAT_OA_DRAFT => Payload::NatOa {
                draft: raw.kind == t::NAT_OA_DRAFT,
                oa: NatOaPayload::parse(b)?,
            },
            kind => Payload::Unknown {
                kind,
                data: b.to_vec(),
            },
        })
    }

    /// Appends the encoded body (without the generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(sa) => sa.emit(out),
            Payload::Ke(d)
            | Payload::Hash(d)
            | Payload::Sig(d)
            | Payload::Nonce(d)
            | Payload::VendorId(d)
            | Payload::NatD { hash: d, .. }
            | Payload::Unknown { data: d, .. } => out.extend_from_slice(d),
            Payload::Id(id) => id.emit(out),
            Payload::Cert(c) | Payload::CertReq(c) => c.emit(out),
            Payload::Notify(n) => n.emit(out),
            Payload::Delete(d) => d.emit(out),
            Payload::NatOa { oa, .. } => oa.emit(out),
        }
    }
}

/// Encodes a payload chain; returns the bytes and the type of the first payload.
#[must_use]
pub fn emit_payloads(payloads: &[Payload]) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let start = out.len();
        out.push(
            payloads
                .get(i + 1)
                .map_or(payload_type::NONE, Payload::kind),
        );
        out.push(0);
        out.extend_from_slice(&[0, 0]);
        p.emit_body(&mut out);
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    (
        payloads.first().map_or(payload_type::NONE, Payload::kind),
        out,
    )
}

/// An owned plaintext message: header plus payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Header (next payload is recomputed on emit).
    pub header: Header,
    /// Payloads in order.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses an unencrypted message.
    ///
    /// # Errors
    /// [`Error::Malformed`] for an invalid header or payload, or when the encryption flag is set.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let p = Packet::new_checked(data)?;
        if p.flags() & flags::ENCRYPTION != 0 {
            return Err(malformed("message is encrypted"));
        }
        let payloads = PayloadIter::new(p.body(), p.next_payload())
            .map(|r| r.and_then(|raw| Payload::parse(&raw)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            header: p.header(),
            payloads,
        })
    }

    /// Encodes the message without encryption.
    #[must_use]
    pub fn emit(&self) -> Vec<u8> {
        let (first, body) = emit_payloads(&self.payloads);
        let mut h = self.header;
        h.next_payload = first;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        h.emit(HEADER_LEN + body.len(), &mut out);
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_attr() -> impl Strategy<Value = Attribute> {
        prop_oneof![
            (0u16..0x7fff, any::<u16>()).prop_map(|(k, v)| Attribute::basic(k, v)),
            (0u16..0x7fff, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(k, v)| {
                Attribute {
                    kind: k,
                    value: AttrValue::Variable(v),
                }
            }),
        ]
    }

    fn arb_sa() -> impl Strategy<Value = SaPayload> {
        let t = (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(arb_attr(), 0..6),
        )
            .prop_map(|(number, id, attributes)| Transform {
                number,
                id,
                attributes,
            });
        let p = (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..17),
            proptest::collection::vec(t, 1..5),
        )
            .prop_map(|(number, protocol, spi, transforms)| Proposal {
                number,
                protocol,
                spi,
                transforms,
            });
        (proptest::collection::vec(p, 1..4), any::<u32>()).prop_map(|(proposals, s)| SaPayload {
            doi: 1,
            situation: s | 1,
            proposals,
        })
    }

    fn arb_payload() -> impl Strategy<Value = Payload> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            arb_sa().prop_map(Payload::Sa),
            bytes().prop_map(Payload::Ke),
            bytes().prop_map(Payload::Nonce),
            bytes().prop_map(Payload::Hash),
            bytes().prop_map(Payload::Sig),
            bytes().prop_map(Payload::VendorId),
            (any::<bool>(), bytes()).prop_map(|(draft, hash)| Payload::NatD { draft, hash }),
            (any::<u8>(), any::<u8>(), any::<u16>(), bytes()).prop_map(
                |(id_type, protocol, port, data)| Payload::Id(IdPayload {
                    id_type,
                    protocol,
                    port,
                    data
                })
            ),
            (any::<u8>(), bytes())
                .prop_map(|(encoding, data)| Payload::Cert(CertPayload { encoding, data })),
            (any::<u8>(), bytes())
                .prop_map(|(encoding, data)| Payload::CertReq(CertPayload { encoding, data })),
            (
                any::<u32>(),
                any::<u8>(),
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..17),
                bytes()
            )
                .prop_map(|(doi, protocol, kind, spi, data)| Payload::Notify(
                    NotifyPayload {
                        doi,
                        protocol,
                        kind,
                        spi,
                        data
                    }
                )),
            (any::<u32>(), any::<u8>(), 1u8..17, 0usize..4).prop_map(|(doi, protocol, sz, n)| {
                Payload::Delete(DeletePayload {
                    doi,
                    protocol,
                    spi_size: sz,
                    spis: vec![vec![7; sz as usize]; n],
                })
            }),
            (any::<bool>(), any::<[u8; 4]>()).prop_map(|(draft, a)| Payload::NatOa {
                draft,
                oa: NatOaPayload { addr: a.into() }
            }),
            (any::<bool>(), any::<[u8; 16]>()).prop_map(|(draft, a)| Payload::NatOa {
                draft,
                oa: NatOaPayload { addr: a.into() }
            }),
        ]
    }

    proptest! {
        #[test]
        fn message_round_trips(payloads in proptest::collection::vec(arb_payload(), 0..8),
                               ic in any::<[u8; 8]>(), rc in any::<[u8; 8]>(), mid in any::<u32>(), ex in any::<u8>()) {
            let m = Message {
                header: Header { initiator_cookie: ic, responder_cookie: rc, next_payload: 0, exchange: ex, flags: 0, message_id: mid },
                payloads,
            };
            let bytes = m.emit();
            let back = Message::parse(&bytes).unwrap();
            prop_assert_eq!(&back.payloads, &m.payloads);
            prop_assert_eq!(back.header.message_id, mid);
            prop_assert_eq!(back.header.initiator_cookie, ic);
            prop_assert_eq!(back.emit(), bytes);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::parse(&data);
            let _ = SaPayload::parse(&data);
            let _ = Attribute::parse_list(&data);
            let _ = collect_payloads(&data, 1);
        }

        #[test]
        fn parse_never_panics_with_valid_header(body in proptest::collection::vec(any::<u8>(), 0..300), first in any::<u8>()) {
            let mut m = Vec::new();
            Header { initiator_cookie: [1; 8], responder_cookie: [2; 8], next_payload: first, exchange: 2, flags: 0, message_id: 0 }
                .emit(HEADER_LEN + body.len(), &mut m);
            m.extend_from_slice(&body);
            let _ = Message::parse(&m);
        }
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(Packet::new_checked(&[0u8; 27][..]).is_err());
        let mut m = [0u8; 28];
        m[17] = 0x10;
        m[27] = 28;
        assert!(Packet::new_checked(&m[..]).is_ok());
        m[27] = 29;
        assert!(Packet::new_checked(&m[..]).is_err());
        m[27] = 28;
        m[17] = 0x20;
        assert!(Packet::new_checked(&m[..]).is_err());
    }

    #[test]
    fn known_sa_encoding() {
        // One ISAKMP proposal, one transform: 3DES, SHA1, PSK, MODP1024, 28800 s.
        let sa = SaPayload {
            doi: 1,
            situation: 1,
            proposals: vec![Proposal {
                number: 1,
                protocol: 1,
                spi: vec![],
                transforms: vec![Transform {
                    number: 1,
                    id: 1,
                    attributes: vec![
                        Attribute::basic(1, 5),
                        Attribute::basic(2, 2),
                        Attribute::basic(3, 1),
                        Attribute::basic(4, 2),
                        Attribute::basic(11, 1),
                        Attribute::number(12, 28800),
                    ],
                }],
            }],
        };
        let mut out = Vec::new();
        sa.emit(&mut out);
        let expect = hex::decode(concat!(
            "00000001", "00000001", // DOI IPsec, SIT_IDENTITY_ONLY
            "00000028", "01010001", // proposal: len 40, #1, ISAKMP, no SPI, 1 transform
            "00000020", "01010000", // transform: len 32, #1, KEY_IKE
            "80010005", "80020002", // 3DES, SHA
            "80030001", "80040002", // PSK, group 2
            "800b0001", "800c7080", // seconds, 28800
        ))
        .unwrap();
        assert_eq!(out, expect);
        assert_eq!(SaPayload::parse(&out).unwrap(), sa);
        // Variable-length lifetime above 0xffff.
        let a = Attribute::number(12, 86400);
        let mut v = Vec::new();
        a.emit(&mut v);
        assert_eq!(v, hex::decode("000c000400015180").unwrap());
        assert_eq!(Attribute::parse_list(&v).unwrap()[0].as_u64(), Some(86400));
    }

    #[test]
    fn truncated_payload_chain_is_an_error() {
        let (first, mut body) =
            emit_payloads(&[Payload::Nonce(vec![1; 16]), Payload::VendorId(vec![2; 16])]);
        body.truncate(body.len() - 1);
        assert!(collect_payloads(&body, first).is_err());
        // Padding after the last payload is ignored.
        let (first, mut body) = emit_payloads(&[Payload::Nonce(vec![1; 16])]);
        body.extend_from_slice(&[0; 7]);
        assert_eq!(collect_payloads(&body, first).unwrap().len(), 1);
    }
}
