//! The page shell (head, navigation, the outcome banner) and the small formatters every
//! page uses: dates, money, status badges, links to a customer or an event.

use crate::views::Time;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::assets;
use super::flash::{Kind, Outcome};

/// Which section a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Customers,
    Outbox,
    None,
}

/// What the shell needs besides the page's own content.
pub(super) struct Shell<'a> {
    pub title: &'a str,
    pub section: Section,
    /// The CSRF token for the sign-out form; `None` when signed out.
    pub csrf: Option<&'a str>,
    pub outcome: Option<&'a Outcome>,
}

pub(super) fn page(shell: &Shell<'_>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (shell.title) " · stripe-reconciler" }
                link rel="stylesheet" href=(assets::CSS_PATH);
                script src=(assets::JS_PATH) defer {}
            }
            body {
                header.top {
                    a.brand href="/console/customers" { span.logo { "⇄" } " reconciler" }
                    @if shell.csrf.is_some() {
                        nav {
                            (nav_link("/console/customers", "Customers", shell.section == Section::Customers))
                            (nav_link("/console/outbox", "Outbox", shell.section == Section::Outbox))
                        }
                    }
                    @if let Some(csrf) = shell.csrf {
                        form.signout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(outcome) = shell.outcome {
                        (banner(outcome))
                    }
                    (content)
                }
            }
        }
    }
}

fn nav_link(href: &str, label: &str, current: bool) -> Markup {
    html! {
        @if current {
            a.current href=(href) aria-current="page" { (label) }
        } @else {
            a href=(href) { (label) }
        }
    }
}

fn banner(outcome: &Outcome) -> Markup {
    let (class, label) = match outcome.kind {
        Kind::Done => ("banner done", "Done"),
        Kind::Notice => ("banner notice", "Not done"),
        Kind::Failed => ("banner failed", "Failed"),
    };
    html! {
        div class=(class) role="status" id="outcome" {
            strong { (label) ": " }
            span.message { (outcome.message) }
            @if let Some((label, url)) = &outcome.link {
                " "
                a.handoff href=(url) target="_blank" rel="noopener noreferrer" { (label) " ↗" }
                input.copy readonly value=(url) aria-label=(label);
            }
        }
    }
}

/// How a state or status reads: `ok` (green), `warn` (amber), `bad` (red), `muted` (grey).
/// The badge always carries the word, so colour is never the only signal.
pub(super) fn badge(status: &str) -> Markup {
    let tone = match status {
        "active" | "trialing" | "applied" | "paid" | "completed" | "done" => "ok",
        "past_due" | "pending" | "received" | "processing" | "scheduled" | "open"
        | "requires_action" | "checkout_required" | "awaiting_payment" | "paused" | "retrying" => {
            "warn"
        }
        "dead" | "failed" | "unpaid" | "incomplete" | "uncollectible" => "bad",
        _ => "muted",
    };
    html! { span class={ "badge " (tone) } { (status.replace('_', " ")) } }
}

/// A view's time as `2026-12-18 11:06 UTC`; `—` for none.
pub(super) fn when(value: impl Into<Option<Time>>) -> Markup {
    match value.into().map(|t| t.0) {
        Some(at) => html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) } },
        None => html! { span.none { "—" } },
    }
}

/// A view's time's day (`2027-01-01`), the whole time on hover; `—` for none.
pub(super) fn day(value: impl Into<Option<Time>>) -> Markup {
    match value.into().map(|t| t.0) {
        Some(at) => html! {
            time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M UTC")) { (at.format("%Y-%m-%d")) }
        },
        None => html! { span.none { "—" } },
    }
}

/// A time as the console writes it.
pub(super) fn at(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// An amount in minor units: `$20.00`, `€5.00`, `¥500`, `12.00 CHF`.
pub(super) fn money(amount: i64, currency: &str) -> String {
    let currency = currency.to_ascii_lowercase();
    // Stripe's zero-decimal currencies.
    const ZERO_DECIMAL: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    let number = if ZERO_DECIMAL.contains(&currency.as_str()) {
        group(amount.unsigned_abs())
    } else {
        format!(
            "{}.{:02}",
            group(amount.unsigned_abs() / 100),
            amount.unsigned_abs() % 100
        )
    };
    let sign = if amount < 0 { "-" } else { "" };
    match currency.as_str() {
        "usd" => format!("{sign}${number}"),
        "eur" => format!("{sign}€{number}"),
        "gbp" => format!("{sign}£{number}"),
        "jpy" => format!("{sign}¥{number}"),
        other => format!("{sign}{number} {}", other.to_ascii_uppercase()),
    }
}

/// `1234567` as `1,234,567`.
pub(super) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number that may be negative, grouped.
pub(super) fn count(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", group(n.unsigned_abs()))
}

/// Characters left as they are in a path segment; every other one is percent-encoded (ids
/// may hold `/`, spaces or anything printable).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(super) fn segment(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

pub(super) fn customer_path(id: &str) -> String {
    format!("/console/customers/{}", segment(id))
}

pub(super) fn event_path(id: &str) -> String {
    format!("/console/events/{}", segment(id))
}

/// A query-string value.
pub(super) fn query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A `<details>` that opens a small form in place ("sheet"): works without JavaScript; the
/// script closes it on Escape and submits it on Cmd/Ctrl+Enter.
pub(super) fn sheet(label: &str, class: &str, body: Markup) -> Markup {
    html! {
        details class={ "sheet " (class) } {
            summary { (label) }
            div.sheet-body { (body) }
        }
    }
}

/// The hidden CSRF field of a form.
pub(super) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A one-button form (retry, uncancel...).
pub(super) fn button_form(action: &str, csrf: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_field(csrf))
            button type="submit" { (label) }
        }
    }
}

/// Preformatted text, escaped.
pub(super) fn pre(text: &str) -> Markup {
    html! { pre { code { (text) } } }
}

/// A trusted, fixed SVG fragment.
pub(super) fn raw(svg: String) -> Markup {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_like_money() {
        assert_eq!(money(2000, "usd"), "$20.00");
        assert_eq!(money(123_456_789, "EUR"), "€1,234,567.89");
        assert_eq!(money(500, "jpy"), "¥500");
        assert_eq!(money(-5, "chf"), "-0.05 CHF");
        assert_eq!(count(-1_234), "-1,234");
    }

    #[test]
    fn ids_are_one_segment() {
        assert_eq!(customer_path("a/b c"), "/console/customers/a%2Fb%20c");
        assert_eq!(segment("u_1-x.y~"), "u_1-x.y~");
    }
}
