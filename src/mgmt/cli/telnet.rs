//! The telnet side of a CLI connection: turns the bytes a telnet client (or
//! `nc`) sends into command lines, and our text into what a terminal shows.
//!
//! Telnet clients may open with option negotiation (`IAC DO ...`,
//! `IAC WILL ...`, sub-negotiations); we refuse every option (`WONT`/`DONT`,
//! as coturn's libtelnet table does) and drop those bytes from the input.
//! Lines end with CR LF, CR NUL or a bare LF. A line longer than
//! [`MAX_LINE`] ends the connection: no command is that long, and an
//! unbounded buffer would let a client grow our memory.

/// The longest command line accepted, in bytes.
pub const MAX_LINE: usize = 4096;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Option(u8),
    /// Inside IAC SB ... IAC SE.
    Sub,
    /// IAC inside a sub-negotiation.
    SubIac,
}

/// What [`LineReader::feed`] found in a chunk of input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// Complete lines, without their line end (lossy UTF-8).
    pub lines: Vec<String>,
    /// Telnet answers to send back (option refusals).
    pub reply: Vec<u8>,
    /// A line exceeded [`MAX_LINE`]: close the connection.
    pub overflow: bool,
}

/// Splits a telnet byte stream into lines; keeps its state across reads.
#[derive(Debug)]
pub struct LineReader {
    state: State,
    line: Vec<u8>,
    /// The previous data byte was CR (a following LF or NUL belongs to it).
    after_cr: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader { state: State::Data, line: Vec::new(), after_cr: false }
    }
}

impl LineReader {
    pub fn feed(&mut self, bytes: &[u8]) -> Input {
        let mut out = Input::default();
        for &b in bytes {
            match self.state {
                State::Data => {
                    if b == IAC {
                        self.state = State::Iac;
                        continue;
                    }
                    self.data_byte(b, &mut out);
                }
                State::Iac => {
                    self.state = State::Data;
                    match b {
                        IAC => self.data_byte(IAC, &mut out),
                        WILL | WONT | DO | DONT => self.state = State::Option(b),
                        SB => self.state = State::Sub,
                        // NOP, GA, AYT, break, erase...: nothing to do.
                        _ => {}
                    }
                }
                State::Option(verb) => {
                    self.state = State::Data;
                    match verb {
                        DO => out.reply.extend_from_slice(&[IAC, WONT, b]),
                        WILL => out.reply.extend_from_slice(&[IAC, DONT, b]),
                        // WONT/DONT: already what we want.
                        _ => {}
                    }
                }
                State::Sub => {
                    if b == IAC {
                        self.state = State::SubIac;
                    }
                }
                State::SubIac => {
                    self.state = if b == SE { State::Data } else { State::Sub };
                }
            }
            if out.overflow {
                break;
            }
        }
        out
    }

    fn data_byte(&mut self, b: u8, out: &mut Input) {
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        match b {
            b'\n' | 0 if after_cr => {}
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                let line = std::mem::take(&mut self.line);
                out.lines.push(String::from_utf8_lossy(&line).into_owned());
            }
            _ => {
                if self.line.len() >= MAX_LINE {
                    out.overflow = true;
                    return;
                }
                self.line.push(b);
            }
        }
    }
}

/// Our text as a terminal wants it: every `\n` becomes CR LF (as libtelnet
/// sends it for coturn) and a 0xFF byte is doubled.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    for &b in text.as_bytes() {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            IAC => out.extend_from_slice(&[IAC, IAC]),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_end_with_crlf_crnul_or_lf() {
        let mut r = LineReader::default();
        let i = r.feed(b"pc\r\nps alice\r\0pu\nlr\r");
        assert_eq!(i.lines, vec!["pc", "ps alice", "pu", "lr"]);
        // The LF of the last CR arrives in the next read: no empty line.
        let i = r.feed(b"\nq\r\n");
        assert_eq!(i.lines, vec!["q"]);
    }

    #[test]
    fn a_line_may_span_reads() {
        let mut r = LineReader::default();
        assert!(r.feed(b"cc user-").lines.is_empty());
        assert_eq!(r.feed(b"quota 1\r\n").lines, vec!["cc user-quota 1"]);
    }

    #[test]
    fn negotiation_is_refused_and_dropped() {
        let mut r = LineReader::default();
        // DO ECHO, WILL NAWS, SB TTYPE ... SE, WONT LINEMODE, then data.
        let i = r.feed(&[IAC, DO, 1, IAC, WILL, 31, IAC, SB, 24, 1, IAC, SE, IAC, WONT, 34, b'p', b'u', b'\r', b'\n']);
        assert_eq!(i.lines, vec!["pu"]);
        assert_eq!(i.reply, vec![IAC, WONT, 1, IAC, DONT, 31]);
    }

    #[test]
    fn negotiation_split_across_reads() {
        let mut r = LineReader::default();
        let a = r.feed(&[b'p', IAC]);
        let b = r.feed(&[DO]);
        let c = r.feed(&[3, b's', b'\n']);
        assert!(a.lines.is_empty() && b.lines.is_empty());
        assert_eq!(c.lines, vec!["ps"]);
        assert_eq!(c.reply, vec![IAC, WONT, 3]);
    }

    #[test]
    fn escaped_iac_is_data() {
        let mut r = LineReader::default();
        let i = r.feed(&[b'a', IAC, IAC, b'\n']);
        assert_eq!(i.lines.len(), 1);
        assert_eq!(i.lines[0], String::from_utf8_lossy(&[b'a', IAC]));
    }

    #[test]
    fn overlong_line_overflows() {
        let mut r = LineReader::default();
        let long = vec![b'x'; MAX_LINE];
        assert!(!r.feed(&long).overflow);
        assert!(r.feed(b"y").overflow);
        // A line of exactly MAX_LINE bytes is fine.
        let mut r = LineReader::default();
        let mut ok = vec![b'x'; MAX_LINE];
        ok.push(b'\n');
        let i = r.feed(&ok);
        assert!(!i.overflow);
        assert_eq!(i.lines[0].len(), MAX_LINE);
    }

    #[test]
    fn encode_uses_crlf() {
        assert_eq!(encode("a\nb\n"), b"a\r\nb\r\n");
        assert_eq!(encode("> "), b"> ");
    }
}
