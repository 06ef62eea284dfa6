//! `stripe-bench load`: signed unique events over N keep-alive connections.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::json;
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::signature;
use tokio::net::TcpStream;

use crate::event::{Events, Mix};
use crate::stats::Summary;

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhooks/stripe")]
    url: String,
    /// The signing secret (whsec_...).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per second offered; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds sent first and not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Which events to send.
    #[arg(long, value_enum, default_value = "invoice-paid")]
    mix: Mix,
    /// Flat out: send exactly this many events (no warm-up), and report accepted/s over the
    /// time they took, instead of running for --duration.
    #[arg(long)]
    count: Option<u64>,
    /// Distinct Stripe customers (ordering keys) the events spread over.
    #[arg(long, default_value_t = 1000)]
    customers: u64,
    /// Base URL of the daemon's API: create the customers first, so events apply.
    #[arg(long, requires = "token")]
    api: Option<String>,
    /// Bearer token for --api.
    #[arg(long, env = "RECONCILER_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The daemon's database: wait for the run's events to be applied and report apply lag.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 120)]
    apply_timeout: u64,
    /// Event ids are evt_bench_<run-id>_<n>.
    #[arg(long)]
    run_id: Option<String>,
    /// Write each acknowledged event id here, one a line.
    #[arg(long)]
    acked_out: Option<PathBuf>,
    /// Append the results as one JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "load")]
    label: String,
    /// Count transport errors and non-2xx answers instead of failing the run.
    #[arg(long)]
    keep_going: bool,
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    /// Ack latency of measured, accepted events, µs.
    latencies: Vec<u32>,
    acked: Vec<u64>,
}

struct Shared {
    events: Events,
    secret: Secret,
    run: String,
    url: hyper::Uri,
    host: String,
    next: AtomicU64,
    start: Instant,
    warmup: Duration,
    end: Instant,
    /// Fixed-rate: total events to send; flat out: until `end`.
    total: Option<u64>,
    rate: u64,
    customers: u64,
    keep_going: bool,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let url: hyper::Uri = args.url.parse().context("--url")?;
    let host = url
        .authority()
        .context("--url needs host:port")?
        .to_string();
    let run = args.run_id.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{:x}", nanos % (1 << 40))
    });
    if let (Some(api), Some(token)) = (&args.api, &args.token) {
        create_customers(api, token, args.customers).await?;
    }
    let counted = args.count.filter(|_| args.rate == 0);
    let warmup = Duration::from_secs_f64(if counted.is_some() { 0.0 } else { args.warmup });
    let measured = Duration::from_secs_f64(args.duration);
    let start = Instant::now();
    let total = counted
        .or((args.rate > 0).then_some((args.rate as f64 * (args.warmup + args.duration)) as u64));
    let shared = Arc::new(Shared {
        events: Events::new(args.mix)?,
        secret: Secret::new(args.secret.clone()),
        run: run.clone(),
        url,
        host,
        next: AtomicU64::new(0),
        start,
        warmup,
        end: start + warmup + measured,
        total,
        rate: args.rate,
        customers: args.customers.max(1),
        keep_going: args.keep_going,
    });
    let tasks: Vec<_> = (0..args.connections.max(1))
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await??;
        all.sent += t.sent;
        all.accepted += t.accepted;
        all.errors += t.errors;
        for (status, n) in t.statuses {
            *all.statuses.entry(status).or_default() += n;
        }
        all.latencies.extend(t.latencies);
        all.acked.extend(t.acked);
    }
    // Accepted per second counts the measured window only: warm-up acks are left out. A
    // counted run is measured over the time it took.
    let measured_accepted = all.latencies.len() as u64;
    let window = match counted {
        Some(_) => start.elapsed().as_secs_f64(),
        None => measured.as_secs_f64(),
    }
    .max(f64::EPSILON);
    let rejected: u64 = all
        .statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    if let Some(path) = &args.acked_out {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for n in &all.acked {
            writeln!(out, "evt_bench_{run}_{n}")?;
        }
        out.flush()?;
    }
    let ack = Summary::of_micros(std::mem::take(&mut all.latencies));
    let lag = match &args.database_url {
        Some(db) => Some(apply_lag(db, &run, all.accepted, args.apply_timeout).await?),
        None => None,
    };
    let result = json!({
        "label": args.label,
        "run_id": run,
        "offered_rate": args.rate,
        "mix": format!("{:?}", args.mix).to_lowercase(),
        "connections": args.connections,
        "duration_s": args.duration,
        "sent": all.sent,
        "accepted": all.accepted,
        "rejected": rejected,
        "errors": all.errors,
        "accepted_per_s": (measured_accepted as f64 / window).round(),
        "ack_ms": ack.map(Summary::to_json),
        "apply_lag_ms": lag.as_ref().map(|l| l.summary.map(Summary::to_json)),
        "applied": lag.as_ref().map(|l| l.applied),
        "skipped": lag.as_ref().map(|l| l.skipped),
        "statuses": all.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
    });
    print_human(&result);
    crate::append_json(args.json.as_deref(), &result)?;
    if !args.keep_going && (rejected > 0 || all.errors > 0) {
        anyhow::bail!(
            "{rejected} non-2xx answers and {} transport errors",
            all.errors
        );
    }
    Ok(())
}

fn print_human(r: &serde_json::Value) {
    let ms = |v: &serde_json::Value| {
        if v.is_null() {
            "-".to_owned()
        } else {
            format!(
                "p50 {} p90 {} p99 {} max {} ms",
                v["p50"], v["p90"], v["p99"], v["max"]
            )
        }
    };
    println!(
        "{}: offered {}/s over {} connections; sent {}, accepted {} ({} /s), rejected {}, errors {}",
        r["label"].as_str().unwrap_or(""),
        if r["offered_rate"] == 0 {
            "max".to_owned()
        } else {
            r["offered_rate"].to_string()
        },
        r["connections"],
        r["sent"],
        r["accepted"],
        r["accepted_per_s"],
        r["rejected"],
        r["errors"]
    );
    println!("  ack:       {}", ms(&r["ack_ms"]));
    if !r["apply_lag_ms"].is_null() {
        println!(
            "  apply lag: {} (applied {}, skipped {})",
            ms(&r["apply_lag_ms"]),
            r["applied"],
            r["skipped"]
        );
    }
    println!("  statuses:  {}", r["statuses"]);
}

/// One keep-alive connection sending until the run ends; reconnects after errors.
async fn connection(shared: Arc<Shared>) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        // Which event, and when it is due.
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        let due = match shared.total {
            Some(total) if n >= total => break,
            Some(_) if shared.rate == 0 => Instant::now(),
            Some(_) => {
                let due = shared.start + Duration::from_secs_f64(n as f64 / shared.rate as f64);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None if Instant::now() >= shared.end => break,
            None => Instant::now(),
        };
        let measured = due >= shared.start + shared.warmup;
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

async fn connect(host: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
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

/// Creates customers `bench_0..k` linked to nothing yet; the first event of each links it.
async fn create_customers(api: &str, token: &str, k: u64) -> anyhow::Result<()> {
    let base: hyper::Uri = api.parse().context("--api")?;
    let host = base
        .authority()
        .context("--api needs host:port")?
        .to_string();
    let url: hyper::Uri = format!("{}/v1/customers", api.trim_end_matches('/')).parse()?;
    let mut senders = Vec::new();
    for _ in 0..8 {
        senders.push(connect(&host).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let (next, url, host, token) =
                (next.clone(), url.clone(), host.clone(), token.to_owned());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= k {
                        return anyhow::Ok(());
                    }
                    let body = json!({ "id": format!("bench_{i}") }).to_string();
                    let request = Request::post(url.clone())
                        .header("host", &host)
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))?;
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    let text = response.into_body().collect().await?.to_bytes();
                    // 409: made by an earlier run, which is as good.
                    if !status.is_success() && status.as_u16() != 409 {
                        anyhow::bail!(
                            "creating bench_{i}: {status} {}",
                            String::from_utf8_lossy(&text)
                        );
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

struct Lag {
    summary: Option<Summary>,
    applied: i64,
    skipped: i64,
}

/// Waits until every stored event of the run is finished, then reads received → applied lag.
async fn apply_lag(db: &str, run: &str, accepted: u64, timeout_secs: u64) -> anyhow::Result<Lag> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db)
        .await
        .context("--database-url")?;
    let pattern = format!("evt_bench_{run}_%");
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        let (stored, finished): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE state IN ('applied', 'skipped'))
             FROM events WHERE id LIKE $1",
        )
        .bind(&pattern)
        .fetch_one(&pool)
        .await?;
        if stored as u64 >= accepted && finished == stored {
            break;
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "after {timeout_secs}s only {finished} of {stored} stored events are finished"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: Vec<(String, f64)> = sqlx::query_as(
        "SELECT state, (extract(epoch FROM finished_at - received_at) * 1e6)::float8
         FROM events WHERE id LIKE $1",
    )
    .bind(&pattern)
    .fetch_all(&pool)
    .await?;
    let applied = rows.iter().filter(|(s, _)| s == "applied").count() as i64;
    let skipped = rows.len() as i64 - applied;
    let micros = rows.iter().map(|(_, us)| us.max(0.0) as u32).collect();
    Ok(Lag {
        summary: Summary::of_micros(micros),
        applied,
        skipped,
    })
}
