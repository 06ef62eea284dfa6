//! `stripe-bench`: the load generator for BENCHMARKS.md and the fault scripts.
//!
//! - `load`: signs unique Stripe events (`invoice.paid`, or whole subscription lives: `--mix`) and POSTs them over N connections, at a
//!   fixed rate or flat out; reports accepted/s, ack latency percentiles and, given the
//!   database, end-to-end apply lag (received → applied) read from the event log.
//! - `abuse`: slow-loris connections and oversized bodies, for the fault scripts.
//!
//! Only a 2xx counts as accepted. In fixed-rate runs, latency is measured from each event's
//! scheduled send time, so a server that falls behind cannot hide its queueing.

mod abuse;
mod event;
mod load;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "stripe-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive POST /webhooks/stripe with signed, unique events.
    Load(Box<load::LoadArgs>),
    /// Hold slow-loris connections and send oversized bodies.
    Abuse(abuse::AbuseArgs),
}

/// Appends `value` as one JSON line to `path`, if given (the `--json` file of both modes).
fn append_json(path: Option<&std::path::Path>, value: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(path) = path {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{value}")?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load(args) => load::run(*args).await,
        Command::Abuse(args) => abuse::run(args).await,
    }
}
