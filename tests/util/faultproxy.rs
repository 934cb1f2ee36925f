//! A fault-injecting HTTP/1.1 proxy for the S3 tests: it stands between the
//! program and the gateway and, following a schedule the test sets, breaks
//! chosen requests the ways a network or a server does (dropped connections,
//! 500/503, a body cut short, a slow answer). Plain std::net and threads: one
//! request per connection (it answers `Connection: close`), so every request
//! is seen and counted on its own.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to a request a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection closes once the request line and headers are read,
    /// before the body.
    DropBeforeRead,
    /// The whole request is read, then the connection closes; the gateway
    /// never sees it.
    DropAfterRead,
    /// The request reaches the gateway, which acts on it; its answer is lost.
    DropResponse,
    /// An S3-style XML error with this status (500, 503).
    Status(u16),
    /// The gateway's answer with its Content-Length, but only half the body.
    Truncate,
    /// The answer comes after this long (the request reaches the gateway
    /// after the wait too).
    Delay(Duration),
}

/// Which requests a rule breaks: method and a substring of the request
/// target (path and query), after `skip` matching requests pass untouched,
/// `times` of them (`usize::MAX`: every one).
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub target: String,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
    seen: usize,
    injected: usize,
}

impl Rule {
    pub fn new(method: &'static str, target: &str, fault: Fault) -> Rule {
        Rule {
            method,
            target: target.to_owned(),
            skip: 0,
            times: 1,
            fault,
            seen: 0,
            injected: 0,
        }
    }

    /// Lets the first `n` matching requests through.
    pub fn after(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }

    /// Breaks `n` matching requests.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    /// Breaks every matching request.
    pub fn always(self) -> Rule {
        self.times(usize::MAX)
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        (self.method == "*" || self.method == method) && target.contains(&self.target)
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Shared {
    rules: Vec<Rule>,
    log: Vec<Seen>,
}

/// The proxy; it runs until the test process ends.
#[derive(Clone)]
pub struct FaultProxy {
    shared: Arc<Mutex<Shared>>,
    port: u16,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 at an ephemeral port and forwards to
    /// `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("the gateway is plain http on loopback")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, up) = (Arc::clone(&s), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &s);
                });
            }
        });
        FaultProxy { shared, port }
    }

    /// The endpoint URL to give the client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the schedule (and forgets what was seen).
    pub fn set(&self, rules: Vec<Rule>) {
        let mut s = self.shared.lock().unwrap();
        s.rules = rules;
        s.log.clear();
    }

    /// No faults from now on.
    pub fn clear(&self) {
        self.set(Vec::new());
    }

    /// How many requests each rule of the schedule broke.
    pub fn injected(&self) -> Vec<usize> {
        self.shared.lock().unwrap().rules.iter().map(|r| r.injected).collect()
    }

    /// Every request since the schedule was set.
    pub fn log(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().log.clone()
    }
}

/// The request head (up to the blank line) and what was read past it.
fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a body of `len` bytes, `have` of which are already read.
fn read_body(conn: &mut TcpStream, mut have: Vec<u8>, len: usize) -> std::io::Result<Vec<u8>> {
    let mut chunk = [0u8; 65536];
    while have.len() < len {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have.extend_from_slice(&chunk[..n]);
    }
    Ok(have)
}

/// Reads a chunked body up to its last chunk, keeping it encoded.
fn read_chunked(conn: &mut TcpStream, mut have: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut chunk = [0u8; 65536];
    while !have.ends_with(b"0\r\n\r\n") {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have.extend_from_slice(&chunk[..n]);
    }
    Ok(have)
}

/// The head with `Connection: close` in place of any connection header.
fn closing(head: &str) -> String {
    let mut out: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    out.push("Connection: close");
    out.join("\r\n") + "\r\n\r\n"
}

fn serve(mut conn: TcpStream, upstream: &str, shared: &Mutex<Shared>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let Some((head, rest)) = read_head(&mut conn)? else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let target = words.next().unwrap_or("").to_owned();
    let fault = {
        let mut s = shared.lock().unwrap();
        let mut fault = None;
        for r in s.rules.iter_mut().filter(|r| r.matches(&method, &target)) {
            r.seen += 1;
            if fault.is_none() && r.seen > r.skip && r.injected < r.times {
                r.injected += 1;
                fault = Some(r.fault);
            }
        }
        s.log.push(Seen {
            method: method.clone(),
            target: target.clone(),
            fault,
        });
        fault
    };
    if fault == Some(Fault::DropBeforeRead) {
        return conn.shutdown(Shutdown::Both);
    }
    let body = if let Some(len) = header(&head, "content-length").and_then(|v| v.parse().ok()) {
        read_body(&mut conn, rest, len)?
    } else if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut conn, rest)?
    } else {
        rest
    };
    match fault {
        Some(Fault::DropAfterRead) => return conn.shutdown(Shutdown::Both),
        Some(Fault::Status(code)) => {
            let (reason, s3code) = if code == 503 {
                ("Service Unavailable", "SlowDown")
            } else {
                ("Internal Server Error", "InternalError")
            };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3code}</Code>\
                 <Message>injected by the test proxy</Message><Resource>{target}</Resource>\
                 <RequestId>fault</RequestId></Error>"
            );
            let resp = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{xml}",
                xml.len()
            );
            conn.write_all(resp.as_bytes())?;
            return conn.shutdown(Shutdown::Both);
        }
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(closing(&head).as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    match fault {
        Some(Fault::DropResponse) => return conn.shutdown(Shutdown::Both),
        Some(Fault::Truncate) => {
            let split = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(answer.len(), |p| p + 4);
            let body_len = answer.len() - split;
            conn.write_all(&answer[..split + body_len / 2])?;
            conn.flush()?;
            return conn.shutdown(Shutdown::Both);
        }
        _ => {}
    }
    // One request per connection: the client must not reuse this one.
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    conn.write_all(closing(&head).as_bytes())?;
    conn.write_all(&answer[split..])?;
    conn.shutdown(Shutdown::Both)
}
