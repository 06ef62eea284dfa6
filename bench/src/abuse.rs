//! `stripe-bench abuse`: slow-loris connections and oversized bodies.
//!
//! Slow connections send a request line and then one header byte every few seconds, never
//! finishing the head. Oversized senders alternate a declared `Content-Length` over the limit
//! with a chunked body that only grows past it while streaming.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, clap::Args)]
pub struct AbuseArgs {
    /// The daemon's listen address, host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Slow-loris connections to hold open.
    #[arg(long, default_value_t = 500)]
    slow: usize,
    /// Concurrent senders of oversized bodies.
    #[arg(long, default_value_t = 20)]
    oversized: usize,
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    body_bytes: usize,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Append the results as one JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub async fn run(args: AbuseArgs) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs_f64(args.duration);
    let slow: Vec<_> = (0..args.slow)
        .map(|_| tokio::spawn(slow_loris(args.addr.clone(), end)))
        .collect();
    let big: Vec<_> = (0..args.oversized)
        .map(|i| {
            tokio::spawn(oversized(
                args.addr.clone(),
                args.body_bytes,
                i % 2 == 0,
                end,
            ))
        })
        .collect();
    let (mut opened, mut still_open) = (0u64, 0u64);
    for task in slow {
        let (o, s) = task.await?;
        opened += u64::from(o);
        still_open += u64::from(s);
    }
    let (mut sent, mut closed) = (0u64, 0u64);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for task in big {
        let t = task.await?;
        sent += t.sent;
        closed += t.closed;
        for (status, n) in t.statuses {
            *statuses.entry(status.to_string()).or_default() += n;
        }
    }
    let result = json!({
        "slow_opened": opened,
        "slow_still_open": still_open,
        "oversized_sent": sent,
        "oversized_status": statuses,
        "oversized_closed": closed,
    });
    println!("abuse: {result}");
    crate::append_json(args.json.as_deref(), &result)?;
    Ok(())
}

/// (opened, still open at the end): the server may close a connection whose head is too slow.
async fn slow_loris(addr: String, end: Instant) -> (bool, bool) {
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        return (false, false);
    };
    let head = format!("POST /webhooks/stripe HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return (true, false);
    }
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(2).min(end - Instant::now())).await;
        if stream.write_all(b"a").await.is_err() {
            return (true, false);
        }
    }
    // A closed connection shows as EOF (or an error) on a short read.
    let mut buf = [0u8; 256];
    let open = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf))
        .await
        .is_err();
    (true, open)
}

#[derive(Default)]
struct Oversized {
    sent: u64,
    closed: u64,
    statuses: BTreeMap<u16, u64>,
}

async fn oversized(addr: String, bytes: usize, declared: bool, end: Instant) -> Oversized {
    let mut tally = Oversized::default();
    let chunk = vec![b'x'; 64 * 1024];
    while Instant::now() < end {
        tally.sent += 1;
        match one_oversized(&addr, bytes, declared, &chunk).await {
            Some(status) => *tally.statuses.entry(status).or_default() += 1,
            None => tally.closed += 1,
        }
    }
    tally
}

/// The status the server answered, or `None` when it closed without one.
async fn one_oversized(addr: &str, bytes: usize, declared: bool, chunk: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let framing = if declared {
        format!("Content-Length: {bytes}")
    } else {
        "Transfer-Encoding: chunked".to_owned()
    };
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Stripe-Signature: t=1,v1=00\r\nConnection: close\r\n{framing}\r\n\r\n"
    );
    let (mut read, mut write) = stream.split();
    let writer = async {
        write.write_all(head.as_bytes()).await?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            if declared {
                write.write_all(&chunk[..n]).await?;
            } else {
                write.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                write.write_all(&chunk[..n]).await?;
                write.write_all(b"\r\n").await?;
            }
            left -= n;
        }
        if !declared {
            write.write_all(b"0\r\n\r\n").await?;
        }
        std::io::Result::Ok(())
    };
    let reader = async {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), read.read_to_end(&mut answer)).await;
        answer
    };
    // The server may answer (and close) before the body is sent: a failed write is expected.
    let (_, answer) = tokio::join!(writer, reader);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}
