//! A minimal TURN client over TCP for black-box tests: frames STUN and
//! padded ChannelData with the crate's stream decoder, signs requests as
//! `user`/`pass` in realm `example.org` once challenged.

#![allow(clippy::unwrap_used)] // test helper: a failed call is the test failure

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use turnserver::stun::integrity::long_term_key;
use turnserver::stun::stream::{Frame, StreamDecoder};
use turnserver::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

pub const REALM: &str = "example.org";

pub struct TcpClient {
    pub s: TcpStream,
    pub dec: StreamDecoder,
    pub nonce: Option<String>,
    n: u32,
}

pub enum Got {
    Stun(Vec<u8>),
    Channel(u16, Vec<u8>),
}

impl TcpClient {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        TcpClient { s, dec: StreamDecoder::new(1 << 17), nonce: None, n: 0 }
    }

    pub fn build(&mut self, method: Method, class: Class, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        self.n += 1;
        let mut t = [0x17u8; 12];
        t[..4].copy_from_slice(&self.n.to_be_bytes());
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, class), TransactionId(t));
        attrs(&mut b);
        if let (Some(n), Class::Request) = (self.nonce.clone(), class) {
            b.add_raw(AttrType::USERNAME, b"user");
            b.add_raw(AttrType::REALM, REALM.as_bytes());
            b.add_raw(AttrType::NONCE, n.as_bytes());
            b.add_integrity(&long_term_key("user", REALM, "pass"));
        }
        let r = b.finish();
        buf[r].to_vec()
    }

    pub fn recv(&mut self) -> Got {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.dec.next_frame().unwrap() {
                Some(Frame::Stun(b)) => return Got::Stun(b.to_vec()),
                Some(Frame::ChannelData { channel, data }) => return Got::Channel(channel, data.to_vec()),
                None => {}
            }
            assert!(Instant::now() < deadline, "nothing from the server");
            let mut buf = [0u8; 4096];
            let n = self.s.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection");
            self.dec.extend(&buf[..n]).unwrap();
        }
    }

    pub fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageBuilder)) -> Vec<u8> {
        let m = self.build(method, Class::Request, &attrs);
        self.s.write_all(&m).unwrap();
        let Got::Stun(a) = self.recv() else { panic!("expected a STUN answer") };
        let msg = Message::parse(&a).unwrap();
        if let Some(Ok(n)) = msg.str_attr(AttrType::NONCE) {
            self.nonce = Some(n.to_string());
        }
        if code(&a) == 401 && method != Method::BINDING {
            let m = self.build(method, Class::Request, &attrs);
            self.s.write_all(&m).unwrap();
            let Got::Stun(a) = self.recv() else { panic!("expected a STUN answer") };
            return a;
        }
        a
    }
}

pub fn code(a: &[u8]) -> u16 {
    let m = Message::parse(a).unwrap();
    match m.class() {
        Class::Success => 0,
        _ => m.error_code().unwrap().unwrap().0,
    }
}

