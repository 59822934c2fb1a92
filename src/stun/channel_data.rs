//! TURN ChannelData framing (RFC 8656 12.4).

/// A parsed ChannelData message borrowing its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub channel: u16,
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// First byte in 0x40..=0x7F (the ChannelData range of the first two bits = 01).
    #[inline]
    pub fn is_channel_data(raw: &[u8]) -> bool {
        matches!(raw.first(), Some(0x40..=0x7F))
    }

    /// Parse: 4-byte header (channel, length) then `length` bytes; trailing padding
    /// (over UDP, any extra bytes; over TCP up to 3) is ignored. `None` when the
    /// channel is outside 0x4000..=0x7FFF or the datagram is shorter than the length.
    #[inline]
    pub fn parse(raw: &'a [u8]) -> Option<ChannelData<'a>> {
        let (&[c0, c1, l0, l1], rest) = raw.split_first_chunk::<4>()?;
        let channel = u16::from_be_bytes([c0, c1]);
        if !(0x4000..=0x7FFF).contains(&channel) {
            return None;
        }
        let len = u16::from_be_bytes([l0, l1]) as usize;
        let data = rest.get(..len)?;
        Some(ChannelData { channel, data })
    }

    /// Append a ChannelData frame to `out`; `pad` adds zero padding to a multiple
    /// of 4 (needed on stream transports, optional on UDP). Returns the range written.
    ///
    /// The length field is 16 bits: callers must not pass more than 65535 bytes
    /// (TURN never relays more in one datagram); a longer `data` is truncated to
    /// 65535 bytes rather than producing a frame whose length lies.
    #[inline]
    pub fn encode(channel: u16, data: &[u8], pad: bool, out: &mut Vec<u8>) -> std::ops::Range<usize> {
        debug_assert!(data.len() <= u16::MAX as usize, "ChannelData payload over 65535 bytes");
        let data = data.get(..u16::MAX as usize).unwrap_or(data);
        let start = out.len();
        let padded = if pad { (data.len() + 3) & !3 } else { data.len() };
        out.reserve(4 + padded);
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        out.resize(start + 4 + padded, 0);
        start..out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect() {
        assert!(ChannelData::is_channel_data(&[0x40]));
        assert!(ChannelData::is_channel_data(&[0x7F, 0]));
        assert!(!ChannelData::is_channel_data(&[0x3F]));
        assert!(!ChannelData::is_channel_data(&[0x80]));
        assert!(!ChannelData::is_channel_data(&[0x00]));
        assert!(!ChannelData::is_channel_data(&[]));
    }

    #[test]
    fn parse_basic() {
        let raw = [0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0];
        let cd = ChannelData::parse(&raw).expect("valid");
        assert_eq!(cd.channel, 0x4001);
        assert_eq!(cd.data, &[1, 2, 3]);
        // Trailing bytes ignored.
        let raw = [0x7F, 0xFF, 0x00, 0x00, 9, 9, 9, 9, 9];
        assert_eq!(ChannelData::parse(&raw), Some(ChannelData { channel: 0x7FFF, data: &[] }));
    }

    #[test]
    fn parse_rejects() {
        assert_eq!(ChannelData::parse(&[]), None);
        assert_eq!(ChannelData::parse(&[0x40, 0x00, 0x00]), None);
        // Data shorter than the length field.
        assert_eq!(ChannelData::parse(&[0x40, 0x00, 0x00, 0x02, 1]), None);
        // Channel outside 0x4000..=0x7FFF.
        assert_eq!(ChannelData::parse(&[0x3F, 0xFF, 0x00, 0x00]), None);
        assert_eq!(ChannelData::parse(&[0x80, 0x00, 0x00, 0x00]), None);
    }

    #[test]
    fn encode_roundtrip_and_padding() {
        let mut out = vec![0xAA];
        let r = ChannelData::encode(0x4000, b"hello", true, &mut out);
        assert_eq!(r, 1..13);
        assert_eq!(&out[r.clone()], &[0x40, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0, 0, 0]);
        let cd = ChannelData::parse(&out[r]).expect("valid");
        assert_eq!((cd.channel, cd.data), (0x4000, &b"hello"[..]));
        let r2 = ChannelData::encode(0x4FFF, b"hello", false, &mut out);
        assert_eq!(r2, 13..22);
        let r3 = ChannelData::encode(0x4FFF, b"", true, &mut out);
        assert_eq!(r3.len(), 4);
    }
}
