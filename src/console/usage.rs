//! A customer's feature usage on its page: a bar per balance, and the balance editor
//! (`POST .../balance`, [`super::customer_forms::balance_action`]).

use maud::{Markup, html};

use super::View;
use super::layout::{badge, count, csrf_field, customer_path, day};
use super::session::random_hex;
use crate::views::BalanceView;

/// Feature usage; `editable`: each balance opens its editor (the customer's only).
pub(super) fn usage(view: &View<'_>, id: &str, balances: &[BalanceView], editable: bool) -> Markup {
    html! {
        section.panel #usage {
            div.panel-head {
                h2 { "Feature usage" }
                span.hint { @if editable { "click a balance to edit it" } @else { "the entity's own" } }
            }
            @if balances.is_empty() {
                p.empty { "No feature balances." }
            } @else {
                table {
                    thead { tr { th { "Feature" } th { "Usage" } th.num { "Balance" } th { "Resets" } } }
                    tbody {
                        @for b in balances {
                            tr data-feature=(b.feature_id) {
                                td {
                                    strong { (b.feature_id) }
                                    @if b.suspended { " " (badge("suspended")) }
                                }
                                td.usage { (usage_bar(b)) }
                                td.num {
                                    @if editable { (balance_sheet(view, id, b)) } @else { (count(b.balance)) }
                                }
                                td { (day(b.next_reset_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Used against the limit (`included + adjustment`), as an SVG bar (no inline styles, so
/// the page's CSP holds) with the figures under it.
fn usage_bar(b: &BalanceView) -> Markup {
    if b.unlimited {
        return html! { span.none { "unlimited · " (count(b.used)) " used" } };
    }
    let limit = b.included.saturating_add(b.adjustment);
    let share = if limit > 0 {
        (b.used as f64 / limit as f64).clamp(0.0, 1.0)
    } else if b.used > 0 {
        1.0
    } else {
        0.0
    };
    let tone = if b.used > limit {
        "fill over"
    } else if share >= 0.8 {
        "fill high"
    } else {
        "fill"
    };
    let percent = format!("{:.1}%", share * 100.0);
    html! {
        svg viewBox="0 0 100 8" preserveAspectRatio="none" role="img"
            aria-label={ (count(b.used)) " of " (count(limit)) " used" } {
            rect.track x="0" y="0" width="100" height="8" rx="4" {}
            rect class=(tone) x="0" y="0" width=(format!("{:.2}", share * 100.0)) height="8" rx="4" {}
        }
        div.figures {
            span { (count(b.used)) " of " (count(limit)) " used" }
            span { (percent) }
        }
        @if b.adjustment != 0 {
            span.sub { "includes " (if b.adjustment > 0 { "+" } else { "" }) (count(b.adjustment)) " edited" }
        }
    }
}

fn balance_sheet(view: &View<'_>, id: &str, b: &BalanceView) -> Markup {
    let label = if b.unlimited {
        "∞".to_owned()
    } else {
        count(b.balance)
    };
    if b.unlimited {
        return html! { (label) };
    }
    html! {
        details.sheet.small.edit-balance {
            summary title="Edit balance" { (label) " ✎" }
            div.sheet-body {
                h3 { "Edit " (b.feature_id) " balance" }
                form method="post" action=(format!("{}/balance", customer_path(id))) {
                    (csrf_field(&view.csrf))
                    input type="hidden" name="feature_id" value=(b.feature_id);
                    // One key per rendered form: posting it twice edits once.
                    input type="hidden" name="idempotency_key" value=(format!("console-{}", random_hex()));
                    div.row {
                        label { "Operation"
                            select name="op" {
                                option value="grant" { "Grant (add)" }
                                option value="set" { "Set to" }
                                option value="deduct" { "Deduct" }
                            }
                        }
                        label { "Amount" input type="number" name="amount" min="0" required; }
                    }
                    label { "Reason" input name="reason" maxlength="500" placeholder="e.g. goodwill credit"; }
                    div.foot { span { "now " (label) " · " kbd { "⌘/Ctrl ↵" } } button.primary type="submit" { "Apply" } }
                }
            }
        }
    }
}
