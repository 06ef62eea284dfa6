//! The run's customers, created through the daemon's API before any event names them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::json;

use super::connection::connect;

/// Creates customers `bench_0..k` linked to nothing yet; the first event of each links it.
pub(super) async fn create_customers(api: &str, token: &str, k: u64) -> anyhow::Result<()> {
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
