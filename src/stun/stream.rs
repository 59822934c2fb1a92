//! Framing of STUN and ChannelData over stream transports (TCP, TLS).
//!
//! Over a stream there are no datagram boundaries: messages follow each other
//! and the receiver cuts them apart from their length fields (RFC 8489 6.2.2,
//! RFC 8656 12.5). This module owns that cutting ([`StreamDecoder`]) and the
//! bounded queue of bytes waiting to be written to a slow stream client
//! ([`StreamEncoderQueue`]). Both are plain buffers: no sockets, no clock.
//!
//! Memory is the concern on both sides. A TURN server holds thousands of TCP
//! connections, so each buffer has a hard bound chosen by the caller, and a
//! peer that sends garbage or reads too slowly costs at most that bound.

use std::collections::VecDeque;

use super::channel_data::ChannelData;

/// Length of the STUN header that precedes the attributes.
const STUN_HEADER_LEN: usize = 20;
/// Length of the ChannelData header (channel number and length).
const CHANNEL_DATA_HEADER_LEN: usize = 4;

/// The longest frame either protocol can describe: a STUN message with the
/// largest length that is a multiple of 4 (20 + 65532). A ChannelData frame
/// tops out at 4 + 65535 + 1 padding byte, which is shorter. A decoder bound at
/// least this large never refuses a well-formed stream.
pub const MAX_FRAME_LEN: usize = STUN_HEADER_LEN + (u16::MAX as usize & !3);

/// How much a decoder allocates up front (or less, if its bound is smaller).
/// Typical STUN requests and ChannelData of an audio stream fit; larger frames
/// grow the buffer up to the bound.
const INITIAL_CAPACITY: usize = 2048;

/// Why a stream cannot be decoded further. Either way the caller closes the
/// connection: a stream has no resynchronisation point once framing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Accepting the bytes would hold more than the decoder's bound, or a frame
    /// header announces a frame longer than the bound (it could never complete).
    #[error("stream buffer full")]
    BufferFull,
    /// The bytes cannot be STUN or ChannelData framing.
    #[error("invalid stream framing: {0}")]
    Invalid(&'static str),
}

/// One frame cut from the stream, borrowing the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole STUN message, header included, ready for
    /// [`Message::parse`](super::Message::parse). Only the framing (first two
    /// bits, length) has been checked.
    Stun(&'a [u8]),
    /// A ChannelData frame without its header and padding.
    ChannelData { channel: u16, data: &'a [u8] },
}

/// Splits a byte stream into frames. Bounded: never buffers more than
/// `max_buffer` bytes.
///
/// Use: [`extend`](Self::extend) (or [`spare`](Self::spare) +
/// [`commit`](Self::commit) to read straight into the buffer) with what the
/// socket returned, then call [`next_frame`](Self::next_frame) until it answers
/// `Ok(None)`. Frames are slices of the internal buffer: consuming one moves a
/// read offset, and the unconsumed tail is moved to the front only when new
/// bytes would not fit, so no frame is copied or allocated on its own.
///
/// STUN messages without the magic cookie (RFC 3489 clients) are framed like
/// any other: the framing needs only the length, and whether such a message is
/// acceptable is the codec's decision.
#[derive(Debug)]
pub struct StreamDecoder {
    /// Initialised storage; `start..end` holds the unconsumed bytes.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_buffer: usize,
}

impl StreamDecoder {
    /// A decoder that holds at most `max_buffer` unconsumed bytes. Pass at
    /// least [`MAX_FRAME_LEN`] to accept every well-formed frame; a smaller
    /// bound rejects larger frames with [`FrameError::BufferFull`].
    pub fn new(max_buffer: usize) -> Self {
        StreamDecoder { buf: vec![0; INITIAL_CAPACITY.min(max_buffer)], start: 0, end: 0, max_buffer }
    }

    /// Append received bytes. `Err(FrameError::BufferFull)` if it would exceed
    /// the bound; then nothing is appended.
    pub fn extend(&mut self, data: &[u8]) -> Result<(), FrameError> {
        if data.len() > self.room() {
            return Err(FrameError::BufferFull);
        }
        self.make_room(data.len());
        let dst = self.buf.get_mut(self.end..self.end + data.len()).ok_or(FrameError::BufferFull)?;
        dst.copy_from_slice(data);
        self.end += data.len();
        Ok(())
    }

    /// Writable space after the buffered bytes, at most `want` bytes and never
    /// beyond the bound, for reading from a socket without an intermediate
    /// copy. Follow with [`commit`](Self::commit). An empty slice means the
    /// buffer is full (the caller should stop reading and treat it like
    /// [`FrameError::BufferFull`] unless frames are still to be taken).
    pub fn spare(&mut self, want: usize) -> &mut [u8] {
        let n = want.min(self.room());
        self.make_room(n);
        let end = self.end;
        self.buf.get_mut(end..end + n).unwrap_or_default()
    }

    /// The buffered bytes not yet consumed (e.g. to parse a PROXY protocol
    /// header in front of the framed stream).
    pub fn peek(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Consume `n` buffered bytes without framing them (clamped to what is buffered).
    pub fn skip(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Mark `n` bytes written into the slice from [`spare`](Self::spare) as
    /// received. `n` larger than that slice is clamped (and a bug in the caller).
    pub fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len(), "commit beyond spare()");
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete frame, if any (borrowing the internal buffer until the
    /// next call), or `Err` for a stream that cannot be STUN/ChannelData: the
    /// caller closes the connection. An error is sticky: the offending bytes
    /// stay in place, so calling again repeats it.
    ///
    /// A ChannelData frame is complete only once its padding has arrived too
    /// (4 + length + padding to a multiple of 4), so the next frame starts on
    /// the right byte.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        let avail = self.buf.get(self.start..self.end).unwrap_or_default();
        let Some(&first) = avail.first() else {
            return Ok(None);
        };
        // The first two bits tell the protocols apart (RFC 7983): 00 STUN,
        // 01 ChannelData (channels 0x4000..=0x7FFF). 10 and 11 are neither;
        // checking them on the first byte closes garbage streams early.
        let is_stun = match first >> 6 {
            0b00 => true,
            0b01 => false,
            _ => return Err(FrameError::Invalid("first two bits are neither STUN nor ChannelData")),
        };
        let Some(&[b0, b1, l0, l1]) = avail.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let total = if is_stun {
            if len % 4 != 0 {
                return Err(FrameError::Invalid("STUN length not a multiple of 4"));
            }
            STUN_HEADER_LEN + len
        } else {
            CHANNEL_DATA_HEADER_LEN + ((len + 3) & !3)
        };
        if total > self.max_buffer {
            return Err(FrameError::BufferFull);
        }
        if avail.len() < total {
            return Ok(None);
        }
        let frame_start = self.start;
        self.start += total;
        if self.start == self.end {
            // Everything consumed: the next bytes go to the front for free.
            // The returned slice stays valid; only the offsets move.
            self.start = 0;
            self.end = 0;
        }
        let raw = self.buf.get(frame_start..frame_start + total).unwrap_or_default();
        if is_stun {
            Ok(Some(Frame::Stun(raw)))
        } else {
            let data = raw.get(CHANNEL_DATA_HEADER_LEN..CHANNEL_DATA_HEADER_LEN + len).unwrap_or_default();
            Ok(Some(Frame::ChannelData { channel: u16::from_be_bytes([b0, b1]), data }))
        }
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes currently allocated; at most the bound (plus the initial
    /// allocation when the bound is smaller than it, which it never is).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Give memory back when nothing is buffered: an idle connection that once
    /// received a large frame need not keep a large buffer.
    pub fn shrink_if_idle(&mut self) {
        if self.buffered() == 0 && self.buf.len() > INITIAL_CAPACITY {
            self.buf = vec![0; INITIAL_CAPACITY.min(self.max_buffer)];
            self.start = 0;
            self.end = 0;
        }
    }

    /// How many more bytes the bound allows.
    fn room(&self) -> usize {
        self.max_buffer.saturating_sub(self.buffered())
    }

    /// Ensure `n` writable bytes after `end`. Precondition: `n <= room()`.
    ///
    /// The unconsumed tail moves to the front only when the space after it is
    /// too small, so the copy is amortised over everything consumed before it;
    /// the buffer grows (geometrically, capped at the bound) only after that.
    fn make_room(&mut self, n: usize) {
        if self.buf.len() - self.end >= n {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let needed = self.end + n;
        if self.buf.len() < needed {
            let grown = needed.max(self.buf.len().saturating_mul(2)).min(self.max_buffer.max(needed));
            self.buf.resize(grown, 0);
        }
    }
}

/// Encode ChannelData for a stream (always padded to a multiple of 4, RFC 8656
/// 12.5), appending to `out`.
pub fn encode_channel_data_padded(channel: u16, data: &[u8], out: &mut Vec<u8>) {
    ChannelData::encode(channel, data, true, out);
}

/// A frame was refused by [`StreamEncoderQueue`] because the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("outgoing stream queue full, frame dropped")]
pub struct Dropped;

/// A bounded queue of bytes waiting to be written to a stream client.
///
/// Data relayed from UDP peers to a TCP client that reads slowly must be
/// dropped, not buffered without limit (coturn #1289): UDP senders expect loss,
/// but an unbounded queue lets one slow client exhaust the server's memory. The
/// queue therefore refuses whole frames that would exceed its bound; frames
/// already queued (including one partially written) are never cut, so the
/// stream stays well framed.
///
/// Write with [`as_slices`](Self::as_slices) (two slices for `writev`) and
/// report progress with [`consume`](Self::consume).
#[derive(Debug)]
pub struct StreamEncoderQueue {
    queue: VecDeque<u8>,
    max_bytes: usize,
    dropped: u64,
}

impl StreamEncoderQueue {
    /// A queue holding at most `max_bytes` unwritten bytes.
    pub fn new(max_bytes: usize) -> Self {
        StreamEncoderQueue { queue: VecDeque::new(), max_bytes, dropped: 0 }
    }

    /// Queue a whole frame, or drop it (and count it) if it does not fit.
    pub fn push(&mut self, frame: &[u8]) -> Result<(), Dropped> {
        if frame.len() > self.room() {
            self.dropped += 1;
            return Err(Dropped);
        }
        self.queue.extend(frame);
        Ok(())
    }

    /// Queue a padded ChannelData frame without building it elsewhere first.
    /// A payload over 65535 bytes is truncated, as in [`ChannelData::encode`].
    pub fn push_channel_data(&mut self, channel: u16, data: &[u8]) -> Result<(), Dropped> {
        let data = data.get(..usize::from(u16::MAX)).unwrap_or(data);
        let padded = (data.len() + 3) & !3;
        if CHANNEL_DATA_HEADER_LEN + padded > self.room() {
            self.dropped += 1;
            return Err(Dropped);
        }
        self.queue.extend(channel.to_be_bytes());
        self.queue.extend((data.len() as u16).to_be_bytes());
        self.queue.extend(data);
        self.queue.extend(std::iter::repeat_n(0u8, padded - data.len()));
        Ok(())
    }

    /// Queue as much of an unframed byte stream as fits (RFC 6062 data
    /// connections); the number of bytes taken.
    pub fn push_some(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        self.queue.extend(&data[..n]);
        n
    }

    /// The queued bytes in order, as at most two slices (for `writev`).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        self.queue.as_slices()
    }

    /// Remove the first `n` bytes after the socket accepted them. `n` beyond
    /// the queue length empties it.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.queue.len());
        self.queue.drain(..n);
        if self.queue.is_empty() && self.queue.capacity() > INITIAL_CAPACITY {
            // A burst is over; do not keep its memory per idle connection.
            self.queue = VecDeque::new();
        }
    }

    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Frames refused so far, for logs and statistics.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn room(&self) -> usize {
        self.max_bytes.saturating_sub(self.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned copy of a frame, so tests can collect frames across calls.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Stun(Vec<u8>),
        Cd(u16, Vec<u8>),
    }

    fn own(f: Frame<'_>) -> Owned {
        match f {
            Frame::Stun(b) => Owned::Stun(b.to_vec()),
            Frame::ChannelData { channel, data } => Owned::Cd(channel, data.to_vec()),
        }
    }

    fn drain(d: &mut StreamDecoder, out: &mut Vec<Owned>) -> Result<(), FrameError> {
        while let Some(f) = d.next_frame()? {
            out.push(own(f));
        }
        Ok(())
    }

    /// A STUN message with the given body length (multiple of 4); the body bytes
    /// are arbitrary since the framing ignores them.
    fn stun(body: usize, fill: u8) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(body as u16).to_be_bytes());
        m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
        m.extend_from_slice(&[7; 12]);
        m.extend(std::iter::repeat_n(fill, body));
        m
    }

    fn cd(channel: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_channel_data_padded(channel, data, &mut v);
        v
    }

    /// STUN, ChannelData with 3 padding bytes, ChannelData with none.
    fn three() -> (Vec<u8>, Vec<Owned>) {
        let a = stun(8, 0xAB);
        let b = cd(0x4001, b"hello");
        let c = cd(0x7FFF, b"1234");
        let expected =
            vec![Owned::Stun(a.clone()), Owned::Cd(0x4001, b"hello".to_vec()), Owned::Cd(0x7FFF, b"1234".to_vec())];
        (a.into_iter().chain(b).chain(c).collect(), expected)
    }

    #[test]
    fn coalesced_read() {
        let (bytes, expected) = three();
        let mut d = StreamDecoder::new(MAX_FRAME_LEN);
        d.extend(&bytes).expect("fits");
        let mut got = Vec::new();
        drain(&mut d, &mut got).expect("valid");
        assert_eq!(got, expected);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn every_split_point() {
        let (bytes, expected) = three();
        for i in 0..=bytes.len() {
            let mut d = StreamDecoder::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            d.extend(&bytes[..i]).expect("fits");
            drain(&mut d, &mut got).expect("valid");
            d.extend(&bytes[i..]).expect("fits");
            drain(&mut d, &mut got).expect("valid");
            assert_eq!(got, expected, "split at {i}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn every_pair_of_split_points_and_byte_by_byte() {
        let (bytes, expected) = three();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut d = StreamDecoder::new(64);
                let mut got = Vec::new();
                for part in [&bytes[..i], &bytes[i..j], &bytes[j..]] {
                    d.extend(part).expect("fits");
                    drain(&mut d, &mut got).expect("valid");
                }
                assert_eq!(got, expected, "split at {i},{j}");
            }
        }
        let mut d = StreamDecoder::new(64);
        let mut got = Vec::new();
        for b in &bytes {
            d.extend(std::slice::from_ref(b)).expect("fits");
            drain(&mut d, &mut got).expect("valid");
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn waits_for_padding() {
        let frame = cd(0x4000, b"abcde"); // 4 + 5 + 3 padding
        assert_eq!(frame.len(), 12);
        let mut d = StreamDecoder::new(100);
        d.extend(&frame[..9]).expect("fits");
        assert_eq!(d.next_frame(), Ok(None), "data complete but padding missing");
        d.extend(&frame[9..11]).expect("fits");
        assert_eq!(d.next_frame(), Ok(None));
        d.extend(&frame[11..]).expect("fits");
        assert_eq!(d.next_frame(), Ok(Some(Frame::ChannelData { channel: 0x4000, data: b"abcde" })));
        // Padding bytes are not mistaken for the start of the next frame.
        d.extend(&cd(0x4002, b"")).expect("fits");
        assert_eq!(d.next_frame(), Ok(Some(Frame::ChannelData { channel: 0x4002, data: b"" })));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn padding_lengths() {
        for len in 0..9usize {
            let data: Vec<u8> = (0..len as u8).collect();
            let frame = cd(0x4ABC, &data);
            assert_eq!(frame.len() % 4, 0);
            assert_eq!(frame.len(), 4 + len.div_ceil(4) * 4);
            assert!(frame[4 + len..].iter().all(|&b| b == 0));
            let mut d = StreamDecoder::new(100);
            d.extend(&frame).expect("fits");
            assert_eq!(d.next_frame(), Ok(Some(Frame::ChannelData { channel: 0x4ABC, data: &data })));
        }
    }

    #[test]
    fn bound_enforced() {
        let mut d = StreamDecoder::new(32);
        d.extend(&[0; 30]).expect("fits");
        assert_eq!(d.extend(&[0; 3]), Err(FrameError::BufferFull));
        assert_eq!(d.buffered(), 30, "a refused extend appends nothing");
        d.extend(&[0; 2]).expect("exactly the bound");
        assert_eq!(d.buffered(), 32);
        assert!(d.spare(10).is_empty());
        assert!(d.capacity() <= 32);
    }

    #[test]
    fn frame_larger_than_bound_is_refused() {
        let mut d = StreamDecoder::new(64);
        d.extend(&stun(100, 0)[..20]).expect("header fits");
        assert_eq!(d.next_frame(), Err(FrameError::BufferFull));
        let mut d = StreamDecoder::new(64);
        d.extend(&[0x40, 0x00, 0x00, 61]).expect("header fits");
        assert_eq!(d.next_frame(), Err(FrameError::BufferFull), "61 + 3 padding + 4 > 64");
        let mut d = StreamDecoder::new(64);
        d.extend(&[0x40, 0x00, 0x00, 60]).expect("header fits");
        assert_eq!(d.next_frame(), Ok(None), "exactly 64 bytes can complete");
    }

    #[test]
    fn largest_frames_fit_max_frame_len() {
        let mut d = StreamDecoder::new(MAX_FRAME_LEN);
        let big = stun(65532, 1);
        assert_eq!(big.len(), MAX_FRAME_LEN);
        d.extend(&big).expect("fits");
        assert!(matches!(d.next_frame(), Ok(Some(Frame::Stun(m))) if m.len() == MAX_FRAME_LEN));
        let payload = vec![5u8; 65535];
        d.extend(&cd(0x4000, &payload)).expect("fits");
        assert_eq!(d.next_frame(), Ok(Some(Frame::ChannelData { channel: 0x4000, data: &payload })));
        d.shrink_if_idle();
        assert!(d.capacity() <= INITIAL_CAPACITY);
    }

    #[test]
    fn invalid_streams() {
        for first in [0x80u8, 0xBF, 0xC0, 0xFF] {
            let mut d = StreamDecoder::new(100);
            d.extend(&[first]).expect("fits");
            assert!(matches!(d.next_frame(), Err(FrameError::Invalid(_))), "first byte {first:#x}");
            // Sticky.
            assert!(matches!(d.next_frame(), Err(FrameError::Invalid(_))));
        }
        let mut d = StreamDecoder::new(100);
        d.extend(&[0x00, 0x01, 0x00, 0x06]).expect("fits");
        assert!(matches!(d.next_frame(), Err(FrameError::Invalid(_))), "STUN length 6");
        // A valid frame followed by garbage: the frame comes out, then the error.
        let mut d = StreamDecoder::new(100);
        let mut bytes = cd(0x4001, b"x");
        bytes.push(0xC0);
        d.extend(&bytes).expect("fits");
        assert_eq!(d.next_frame(), Ok(Some(Frame::ChannelData { channel: 0x4001, data: b"x" })));
        assert!(matches!(d.next_frame(), Err(FrameError::Invalid(_))));
    }

    #[test]
    fn spare_and_commit() {
        let (bytes, expected) = three();
        let mut d = StreamDecoder::new(MAX_FRAME_LEN);
        let mut got = Vec::new();
        for chunk in bytes.chunks(7) {
            let s = d.spare(chunk.len());
            assert_eq!(s.len(), chunk.len());
            s.copy_from_slice(chunk);
            d.commit(chunk.len());
            drain(&mut d, &mut got).expect("valid");
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn compaction_keeps_capacity_bounded() {
        // Many frames through a small decoder: the offset and compaction must
        // reuse the same storage rather than grow.
        let frame = cd(0x4001, &[9; 13]); // 20 bytes
        let mut d = StreamDecoder::new(48);
        let stream: Vec<u8> = std::iter::repeat_n(frame, 100).flatten().collect();
        let mut n = 0;
        for chunk in stream.chunks(11) {
            d.extend(chunk).expect("fits");
            while let Some(f) = d.next_frame().expect("valid") {
                assert_eq!(f, Frame::ChannelData { channel: 0x4001, data: &[9; 13] });
                n += 1;
            }
            assert!(d.capacity() <= 48);
        }
        assert_eq!(n, 100);
    }

    #[test]
    fn encoder_queue_drops_whole_frames() {
        let mut q = StreamEncoderQueue::new(20);
        q.push(&[1; 12]).expect("fits");
        assert_eq!(q.push(&[2; 9]), Err(Dropped));
        q.push(&[3; 8]).expect("exactly fits");
        assert_eq!(q.len(), 20);
        assert_eq!(q.dropped(), 1);
        let (a, b) = q.as_slices();
        let all: Vec<u8> = a.iter().chain(b).copied().collect();
        assert_eq!(all, [[1u8; 12].as_slice(), &[3; 8]].concat());
        q.consume(5);
        assert_eq!(q.len(), 15);
        assert_eq!(q.push_channel_data(0x4000, b"abc"), Err(Dropped), "15 + 8 > 20");
        q.consume(3);
        q.push_channel_data(0x4000, b"abc").expect("12 + 8 fits");
        assert_eq!(q.len(), 20);
        assert_eq!(q.dropped(), 2);
    }

    #[test]
    fn encoder_queue_channel_data_matches_encoding() {
        let mut q = StreamEncoderQueue::new(100);
        q.push_channel_data(0x4001, b"hello").expect("fits");
        let (a, b) = q.as_slices();
        let all: Vec<u8> = a.iter().chain(b).copied().collect();
        assert_eq!(all, cd(0x4001, b"hello"));
        assert_eq!(q.push_channel_data(0x4001, &[0; 90]), Err(Dropped), "12 + 4 + 92 > 100");
        q.consume(usize::MAX);
        assert!(q.is_empty());
    }

    /// An arbitrary valid frame, as (expected, encoded bytes).
    fn arb_frame() -> impl Strategy<Value = (Owned, Vec<u8>)> {
        prop_oneof![
            (0x4000u16..=0x7FFF, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(ch, data)| {
                let bytes = cd(ch, &data);
                (Owned::Cd(ch, data), bytes)
            }),
            (0usize..75, any::<u8>()).prop_map(|(words, fill)| {
                let m = stun(words * 4, fill);
                (Owned::Stun(m.clone()), m)
            }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic_or_exceed_bound(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(1usize..200, 1..40),
            bound in 0usize..600,
        ) {
            let mut d = StreamDecoder::new(bound);
            let mut rest = bytes.as_slice();
            let mut cuts = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cuts.next().unwrap_or(&1)).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                if d.extend(chunk).is_err() {
                    prop_assert!(d.buffered() + chunk.len() > bound);
                }
                prop_assert!(d.buffered() <= bound);
                prop_assert!(d.capacity() <= bound);
                loop {
                    match d.next_frame() {
                        Ok(Some(Frame::Stun(m))) => prop_assert!(m.len() >= 20 && m.len() <= bound),
                        Ok(Some(Frame::ChannelData { data, .. })) => prop_assert!(data.len() + 4 <= bound),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }

        #[test]
        fn encode_decode_round_trip(
            frames in proptest::collection::vec(arb_frame(), 0..12),
            cuts in proptest::collection::vec(1usize..500, 1..20),
        ) {
            let expected: Vec<Owned> = frames.iter().map(|(o, _)| o.clone()).collect();
            let stream: Vec<u8> = frames.into_iter().flat_map(|(_, b)| b).collect();
            let mut d = StreamDecoder::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            let mut rest = stream.as_slice();
            let mut cuts = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cuts.next().unwrap_or(&1)).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                prop_assert!(d.extend(chunk).is_ok());
                prop_assert!(drain(&mut d, &mut got).is_ok());
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(d.buffered(), 0);
        }

        #[test]
        fn encoder_queue_never_exceeds_bound(
            ops in proptest::collection::vec((any::<bool>(), 0usize..200), 0..100),
            bound in 0usize..500,
        ) {
            let mut q = StreamEncoderQueue::new(bound);
            let mut model: Vec<u8> = Vec::new();
            let mut tag = 0u8;
            for (is_push, n) in ops {
                if is_push {
                    tag = tag.wrapping_add(1);
                    let frame = vec![tag; n];
                    if q.push(&frame).is_ok() {
                        model.extend_from_slice(&frame);
                    } else {
                        prop_assert!(model.len() + n > bound);
                    }
                } else {
                    q.consume(n);
                    model.drain(..n.min(model.len()));
                }
                prop_assert!(q.len() <= bound);
                let (a, b) = q.as_slices();
                prop_assert_eq!([a, b].concat(), model.clone());
            }
        }
    }
}
