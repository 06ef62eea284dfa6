//! `replay`: sign event files exactly as Stripe does and POST them.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::Secret;
use crate::stripe::signature;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Posts each file in order, printing `STATUS FILE`; true when every answer was 2xx.
pub async fn replay_files(files: &[PathBuf], url: &str, secret: &Secret) -> anyhow::Result<bool> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut all_ok = true;
    for file in files {
        let body = std::fs::read(file)
            .map_err(|e| super::UsageError(format!("cannot read {}: {e}", file.display())))?;
        let (status, answer) = post_signed(&client, url, Bytes::from(body), secret).await?;
        all_ok &= status.is_success();
        if status.is_success() {
            println!("{} {}", status.as_u16(), file.display());
        } else {
            println!("{} {} {}", status.as_u16(), file.display(), answer.trim());
        }
    }
    Ok(all_ok)
}

/// Signs `body` with the current time and POSTs it; returns the status and the answer body.
pub async fn post_signed(
    client: &HttpClient,
    url: &str,
    body: Bytes,
    secret: &Secret,
) -> anyhow::Result<(StatusCode, String)> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let request = Request::post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", signature::sign(secret, now, &body))
        .body(Full::new(body))?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&answer).into_owned()))
}
