//! One keep-alive connection sending the run's events as the schedule says, and what it saw.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::signature;
use tokio::net::TcpStream;

use super::schedule::Schedule;
use crate::event::Events;

/// What one connection saw.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) errors: u64,
    pub(super) statuses: BTreeMap<u16, u64>,
    /// Ack latency of measured, accepted events, µs.
    pub(super) latencies: Vec<u32>,
    pub(super) acked: Vec<u64>,
}

/// What every connection of the run shares.
pub(super) struct Shared {
    pub(super) events: Events,
    pub(super) secret: Secret,
    pub(super) run: String,
    pub(super) url: hyper::Uri,
    pub(super) host: String,
    pub(super) schedule: Schedule,
    pub(super) customers: u64,
    pub(super) keep_going: bool,
}

/// One keep-alive connection sending until the run ends; reconnects after errors.
pub(super) async fn connection(shared: Arc<Shared>) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        // Which event, and when it is due.
        let Some((n, due)) = shared.schedule.next().await else {
            break;
        };
        let measured = shared.schedule.measured(due);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
        let ids = shared.events.ids(n, shared.customers, now);
        let body = shared.events.render(&shared.run, &ids);
        let signature = signature::sign(&shared.secret, now, &body);
        let request = Request::post(shared.url.clone())
            .header("host", &shared.host)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(Full::new(Bytes::from(body)))?;
        tally.sent += 1;
        let answer = match send(&shared, &mut sender, request).await {
            Ok(status) => status,
            Err(error) if shared.keep_going => {
                tally.errors += 1;
                sender = None;
                report_transport_error(&error);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        *tally.statuses.entry(answer).or_default() += 1;
        if (200..300).contains(&answer) {
            tally.accepted += 1;
            tally.acked.push(n);
            if measured {
                tally
                    .latencies
                    .push(due.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
        }
    }
    Ok(tally)
}

fn report_transport_error(error: &anyhow::Error) {
    static SHOWN: AtomicU64 = AtomicU64::new(0);
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 3 {
        eprintln!("transport error (counted): {error:#}");
    }
}

async fn send(
    shared: &Shared,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<u16> {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = Some(connect(&shared.host).await?);
    }
    let s = sender.as_mut().expect("connected above");
    s.ready().await?;
    let response = s.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

pub(super) async fn connect(host: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(host)
        .await
        .with_context(|| format!("connect {host}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
