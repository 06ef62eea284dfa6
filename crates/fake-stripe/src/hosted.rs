//! The hosted checkout page, so a person can finish a checkout in a browser or with curl:
//! `GET /checkout/{id}` shows the session and a "Pay" button, which POSTs to
//! `/checkout/{id}/complete`; that completes it as [`super::FakeStripe::complete_checkout`]
//! (with a `promotion_code` field, shown when the session has `allow_promotion_codes`, as
//! [`super::FakeStripe::complete_checkout_with_code`]).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, header};
use serde_json::Value;

use super::server::HttpResponse;
use super::shared::Fake;

pub(super) fn show(fake: &Fake, id: &str) -> HttpResponse {
    match fake.lock().sessions.get(id) {
        Some(session) => html(200, page(session)),
        None => html(
            404,
            refused_page(&format!("No such checkout session: {id}")),
        ),
    }
}

pub(super) async fn pay(fake: &Fake, id: &str, code: Option<&str>) -> HttpResponse {
    let status = fake.lock().sessions.get(id).map(|s| s["status"].clone());
    if status.as_ref().is_none_or(|s| s != "open") {
        let why = format!("Session {id} is not open (status: {status:?}).");
        return html(409, refused_page(&why));
    }
    // Delivery can fail after the payment went through: it is paid, with a note.
    let problem = fake.complete_checkout(id, code).await.err();
    match fake.lock().sessions.get(id) {
        Some(session) if session["status"] == "complete" => {
            let note = problem.map(|e| format!("{e:#}"));
            html(200, paid_page(session, note.as_deref()))
        }
        _ => {
            let why = problem.map_or_else(|| "Not completed.".to_owned(), |e| format!("{e:#}"));
            html(409, refused_page(&why))
        }
    }
}

/// The hosted page: what is being bought and a "Pay" button.
fn page(session: &Value) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let amount = session["amount_total"].as_i64().unwrap_or(0);
    let currency = session["currency"].as_str().unwrap_or("").to_uppercase();
    let status = session["status"].as_str().unwrap_or_default();
    let code = if session["allow_promotion_codes"] == true {
        "<label>Promotion code <input name=\"promotion_code\"></label> "
    } else {
        ""
    };
    let action = if status == "open" {
        format!(
            "<form method=\"post\" action=\"/checkout/{id}/complete\">{code}\
             <button type=\"submit\">Pay</button></form>"
        )
    } else {
        format!("<p>This session is {}.</p>", escape(status))
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Fake Stripe Checkout</title>\
         </head><body><h1>Fake Stripe Checkout</h1><p>Session <code>{}</code>: {}.{:02} {}</p>{action}\
         </body></html>",
        escape(id),
        amount / 100,
        amount % 100,
        escape(&currency),
    )
}

/// The page after paying, with the way back to the merchant and any delivery problem.
fn paid_page(session: &Value, problem: Option<&str>) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let back = session["success_url"]
        .as_str()
        .map(|url| url.replace("{CHECKOUT_SESSION_ID}", id))
        .map(|url| format!("<p><a href=\"{0}\">{0}</a></p>", escape(&url)))
        .unwrap_or_default();
    let problem = problem
        .map(|p| format!("<p>Webhook delivery failed: {}</p>", escape(p)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Paid</title></head>\
         <body><h1>Payment complete</h1><p>Session <code>{}</code> is complete.</p>{back}\
         {problem}</body></html>",
        escape(id)
    )
}

/// The page when the session cannot be paid.
fn refused_page(why: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not paid</title></head>\
         <body><h1>Not completed</h1><p>{}</p></body></html>",
        escape(why)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(status: u16, page: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(page)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/html; charset=utf-8".parse().expect("valid"),
    );
    response
}
