//! Control messages: a message type plus AVPs (RFC 2661 section 3.2 and 6).

use crate::avp::{self, Avp, RawAvpIter, ResultCode, attr, emit_raw};
use crate::{Error, Rng};

/// Most AVPs accepted in one control message.
pub const MAX_AVPS: usize = 128;

/// Control message type (RFC 2661 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // names are the RFC's
pub enum MessageType {
    Sccrq,
    Sccrp,
    Scccn,
    StopCcn,
    Hello,
    Ocrq,
    Ocrp,
    Occn,
    Icrq,
    Icrp,
    Iccn,
    Cdn,
    Wen,
    Sli,
    /// Any other value.
    Other(u16),
}

impl MessageType {
    /// The wire value.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            MessageType::Sccrq => 1,
            MessageType::Sccrp => 2,
            MessageType::Scccn => 3,
            MessageType::StopCcn => 4,
            MessageType::Hello => 6,
            MessageType::Ocrq => 7,
            MessageType::Ocrp => 8,
            MessageType::Occn => 9,
            MessageType::Icrq => 10,
            MessageType::Icrp => 11,
            MessageType::Iccn => 12,
            MessageType::Cdn => 14,
            MessageType::Wen => 15,
            MessageType::Sli => 16,
            MessageType::Other(v) => v,
        }
    }

    /// The type for a wire value.
    #[must_use]
    pub fn from_code(v: u16) -> Self {
        match v {
            1 => MessageType::Sccrq,
            2 => MessageType::Sccrp,
            3 => MessageType::Scccn,
            4 => MessageType::StopCcn,
            6 => MessageType::Hello,
            7 => MessageType::Ocrq,
            8 => MessageType::Ocrp,
            9 => MessageType::Occn,
            10 => MessageType::Icrq,
            11 => MessageType::Icrp,
            12 => MessageType::Iccn,
            14 => MessageType::Cdn,
            15 => MessageType::Wen,
            16 => MessageType::Sli,
            v => MessageType::Other(v),
        }
    }

    /// True for messages that belong to a session (call) rather than to the tunnel.
    #[must_use]
    pub fn is_session_message(self) -> bool {
        matches!(
            self,
            MessageType::Ocrq
                | MessageType::Ocrp
                | MessageType::Occn
                | MessageType::Icrq
                | MessageType::Icrp
                | MessageType::Iccn
                | MessageType::Cdn
                | MessageType::Wen
                | MessageType::Sli
        )
    }
}

/// A decoded control message body (everything after the L2TP header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The Message Type AVP.
    pub kind: MessageType,
    /// The other AVPs in wire order (hidden ones already revealed, Random Vector kept).
    pub avps: Vec<Avp>,
}

/// What [`Message::emit`] needs to hide AVPs.
pub struct Hider<'a> {
    /// The tunnel secret.
    pub secret: &'a [u8],
    /// Randomness for the Random Vector and padding.
    pub rng: &'a mut dyn Rng,
}

impl std::fmt::Debug for Hider<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hider { .. }")
    }
}

impl Message {
    /// A message with the given AVPs.
    #[must_use]
    pub fn new(kind: MessageType, avps: Vec<Avp>) -> Self {
        Message { kind, avps }
    }

    /// Parses a control message body. `secret` reveals hidden AVPs.
    ///
    /// # Errors
    /// On malformed AVPs, a missing Message Type AVP, too many AVPs, or a hidden AVP that
    /// cannot be revealed.
    pub fn parse(body: &[u8], secret: Option<&[u8]>) -> Result<Message, Error> {
        let mut iter = RawAvpIter::new(body);
        let first = iter.next().ok_or(Error::MissingMessageType)??;
        if first.vendor_id != 0 || first.attr_type != attr::MESSAGE_TYPE || first.hidden {
            return Err(Error::MissingMessageType);
        }
        let kind =
            MessageType::from_code(u16::try_from_slice(first.value).ok_or(Error::BadAvpValue {
                attr: 0,
                len: first.value.len(),
            })?);
        let mut avps = Vec::new();
        let mut random_vector: Option<Vec<u8>> = None;
        for raw in iter {
            let raw = raw?;
            if avps.len() >= MAX_AVPS {
                return Err(Error::TooManyAvps);
            }
            let avp = if raw.hidden {
                let secret = secret.ok_or(Error::HiddenWithoutSecret)?;
                let rv = random_vector
                    .as_deref()
                    .ok_or(Error::HiddenWithoutRandomVector)?;
                let value = avp::unhide_value(raw.attr_type, secret, rv, raw.value)?;
                Avp::decode(raw.vendor_id, raw.attr_type, raw.mandatory, &value)?
            } else {
                Avp::decode(raw.vendor_id, raw.attr_type, raw.mandatory, raw.value)?
            };
            if let Avp::RandomVector(rv) = &avp {
                random_vector = Some(rv.clone());
            }
            avps.push(avp);
        }
        Ok(Message { kind, avps })
    }

    /// Appends the encoded body to `out`. With a [`Hider`], AVPs for which
    /// [`Avp::hidden_by_default`] holds are hidden behind one fresh Random Vector.
    ///
    /// # Errors
    /// When an AVP value is too long.
    pub fn emit(&self, out: &mut Vec<u8>, mut hider: Option<Hider<'_>>) -> Result<(), Error> {
        emit_raw(
            out,
            true,
            false,
            0,
            attr::MESSAGE_TYPE,
            &self.kind.code().to_be_bytes(),
        )?;
        let mut rv: Option<[u8; 16]> = None;
        let mut value = Vec::new();
        for a in &self.avps {
            value.clear();
            a.emit_value(&mut value);
            let (vendor, t) = a.kind();
            match hider.as_mut() {
                Some(h) if a.hidden_by_default() => {
                    let vector = match rv {
                        Some(v) => v,
                        None => {
                            let mut v = [0u8; 16];
                            h.rng.fill(&mut v);
                            emit_raw(out, true, false, 0, attr::RANDOM_VECTOR, &v)?;
                            rv = Some(v);
                            v
                        }
                    };
                    // Pad the sub-format to a multiple of 16 bytes (RFC 2661 4.3 suggests padding).
                    let pad_len = (16 - (value.len() + 2) % 16) % 16;
                    let mut pad = [0u8; 16];
                    h.rng.fill(&mut pad[..pad_len]);
                    let hidden = avp::hide_value(t, h.secret, &vector, &value, &pad[..pad_len]);
                    emit_raw(out, a.mandatory(), true, vendor, t, &hidden)?;
                }
                _ => emit_raw(out, a.mandatory(), false, vendor, t, &value)?,
            }
        }
        Ok(())
    }

    /// The first Result Code AVP.
    #[must_use]
    pub fn result_code(&self) -> Option<&ResultCode> {
        self.avps.iter().find_map(|a| {
            if let Avp::ResultCode(r) = a {
                Some(r)
            } else {
                None
            }
        })
    }

    /// The first AVP for which `f` returns `Some`.
    pub fn find<'a, T>(&'a self, f: impl FnMut(&'a Avp) -> Option<T>) -> Option<T> {
        self.avps.iter().find_map(f)
    }

    /// The first unknown AVP with the M bit set: (vendor id, attribute type).
    #[must_use]
    pub fn unknown_mandatory(&self) -> Option<(u16, u16)> {
        self.avps.iter().find_map(|a| match a {
            Avp::Unknown {
                vendor_id,
                attr_type,
                mandatory: true,
                ..
            } => Some((*vendor_id, *attr_type)),
            _ => None,
        })
    }
}

trait FromSlice: Sized {
    fn try_from_slice(v: &[u8]) -> Option<Self>;
}

impl FromSlice for u16 {
    fn try_from_slice(v: &[u8]) -> Option<Self> {
        <[u8; 2]>::try_from(v).ok().map(u16::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avp::tests::any_avp;
    use crate::tests::SeqRng;
    use proptest::prelude::*;

    #[test]
    fn parses_xl2tpd_stopccn() {
        // StopCCN body: Message Type 4, Assigned Tunnel ID 7, Result Code 2/6 + message.
        let mut body = Vec::new();
        emit_raw(&mut body, true, false, 0, 0, &[0, 4]).unwrap();
        emit_raw(&mut body, true, false, 0, 9, &[0, 7]).unwrap();
        let mut rc = vec![0, 2, 0, 6];
        rc.extend_from_slice(b"Invalid challenge authentication");
        emit_raw(&mut body, true, false, 0, 1, &rc).unwrap();
        let m = Message::parse(&body, None).unwrap();
        assert_eq!(m.kind, MessageType::StopCcn);
        assert_eq!(m.result_code().unwrap().error, Some(6));
        assert_eq!(m.avps[0], Avp::AssignedTunnelId(7));
    }

    #[test]
    fn rejects_missing_message_type_and_hidden_without_secret() {
        let mut body = Vec::new();
        emit_raw(&mut body, true, false, 0, 9, &[0, 7]).unwrap();
        assert_eq!(Message::parse(&body, None), Err(Error::MissingMessageType));
        assert_eq!(Message::parse(&[], None), Err(Error::MissingMessageType));

        let mut body = Vec::new();
        emit_raw(&mut body, true, false, 0, 0, &[0, 10]).unwrap();
        emit_raw(&mut body, true, true, 0, 14, &[1, 2, 3, 4]).unwrap();
        assert_eq!(Message::parse(&body, None), Err(Error::HiddenWithoutSecret));
        assert_eq!(
            Message::parse(&body, Some(b"s")),
            Err(Error::HiddenWithoutRandomVector)
        );
    }

    #[test]
    fn vendor_avps_are_kept() {
        let mut body = Vec::new();
        emit_raw(&mut body, true, false, 0, 0, &[0, 2]).unwrap();
        emit_raw(&mut body, false, false, 9, 1, b"cisco").unwrap();
        emit_raw(&mut body, true, false, 311, 2, b"ms").unwrap();
        let m = Message::parse(&body, None).unwrap();
        assert_eq!(m.avps.len(), 2);
        assert_eq!(m.unknown_mandatory(), Some((311, 2)));
    }

    #[test]
    fn too_many_avps() {
        let mut body = Vec::new();
        emit_raw(&mut body, true, false, 0, 0, &[0, 6]).unwrap();
        for _ in 0..=MAX_AVPS {
            emit_raw(&mut body, false, false, 5, 5, &[]).unwrap();
        }
        assert_eq!(Message::parse(&body, None), Err(Error::TooManyAvps));
    }

    proptest! {
        #[test]
        fn message_round_trip(t in 1u16..20, avps in proptest::collection::vec(any_avp(), 0..12),
                              hide in any::<bool>(), seed in any::<u64>()) {
            // A message of ours never carries its own Random Vector: the hider adds one.
            let avps: Vec<Avp> = avps.into_iter().filter(|a| !(hide && matches!(a, Avp::RandomVector(_)))).collect();
            let m = Message::new(MessageType::from_code(t), avps);
            let mut out = Vec::new();
            let mut rng = SeqRng(seed);
            let hider = if hide { Some(Hider { secret: b"tunnel secret", rng: &mut rng }) } else { None };
            m.emit(&mut out, hider).unwrap();
            let back = Message::parse(&out, Some(b"tunnel secret")).unwrap();
            // Hiding adds a Random Vector AVP; drop the added one before comparing.
            let mut avps = back.avps;
            if hide && m.avps.iter().any(Avp::hidden_by_default) {
                let i = avps.iter().position(|a| matches!(a, Avp::RandomVector(_))).unwrap();
                avps.remove(i);
            }
            prop_assert_eq!(back.kind, m.kind);
            prop_assert_eq!(avps, m.avps);
        }

        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::parse(&body, Some(b"x"));
        }
    }
}
