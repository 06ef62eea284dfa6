//! `stripe-bench load`: signed unique events over N keep-alive connections.
//!
//! Here the arguments and the run (set up, start the connections, add up what they saw);
//! `schedule` says which event is sent when, `connection` sends them over one keep-alive
//! connection, `customers` creates the customers first (`--api`), `report` reads the apply
//! lag from the event log (`--database-url`) and prints the results.

mod connection;
mod customers;
mod report;
mod schedule;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;
use stripe_reconciler::config::Secret;

use crate::event::{Events, Mix};
use crate::stats::Summary;
use connection::{Shared, Tally, connection};
use customers::create_customers;
use report::{apply_lag, print_human};
use schedule::Schedule;

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
        schedule: Schedule::new(start, warmup, measured, total, args.rate),
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
        Some(db) => {
            // Events are numbered in the order they are due: the warm-up's come first.
            let first_measured = (args.rate as f64 * warmup.as_secs_f64()) as u64;
            Some(apply_lag(db, &run, all.accepted, first_measured, args.apply_timeout).await?)
        }
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
        "apply_lag_all_ms": lag.as_ref().map(|l| l.all.map(Summary::to_json)),
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
