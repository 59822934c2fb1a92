//! TURN ChannelData framing (RFC 8656 12.4).

/// A parsed ChannelData message borrowing its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub channel: u16,
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// First byte in 0x40..=0x7F (the ChannelData range of the first two bits = 01).
    pub fn is_channel_data(raw: &[u8]) -> bool {
        todo!()
    }

    /// Parse: 4-byte header (channel, length) then `length` bytes; trailing padding
    /// (over UDP, any extra bytes; over TCP up to 3) is ignored. `None` when the
    /// channel is outside 0x4000..=0x7FFF or the datagram is shorter than the length.
    pub fn parse(raw: &'a [u8]) -> Option<ChannelData<'a>> {
        todo!()
    }

    /// Append a ChannelData frame to `out`; `pad` adds zero padding to a multiple
    /// of 4 (needed on stream transports, optional on UDP). Returns the range written.
    pub fn encode(channel: u16, data: &[u8], pad: bool, out: &mut Vec<u8>) -> std::ops::Range<usize> {
        todo!()
    }
}
