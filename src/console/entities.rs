//! The customer page's entities (the view's `entities`): a panel at the top listing each
//! with its plans and balances, a link per entity that filters the page to it
//! (`?entity=ID`: its plans and balances instead of the customer's), and the attach form's
//! choice of who holds the plan (the customer or an entity).

use maud::{Markup, html};

use super::layout::{badge, count, customer_path, query_value};
use crate::views::EntityView;

/// The entity a page's query asks for (`entity=`), if any.
pub(super) fn asked(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "entity")
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

/// The customer's page, filtered to `entity` if given.
pub(super) fn path(id: &str, entity: Option<&str>) -> String {
    match entity {
        Some(entity) => format!("{}?entity={}", customer_path(id), query_value(entity)),
        None => customer_path(id),
    }
}

/// The entities panel: nothing for a customer without entities.
pub(super) fn panel(id: &str, entities: &[EntityView], selected: Option<&EntityView>) -> Markup {
    if entities.is_empty() {
        return html! {};
    }
    let is_selected = |e: &EntityView| selected.is_some_and(|s| s.id == e.id);
    html! {
        section.panel #entities {
            div.panel-head {
                h2 { "Entities" }
                span.hint {
                    (entities.len()) " · "
                    @if selected.is_some() {
                        a href=(path(id, None)) { "Show the whole customer" }
                    } @else {
                        "select one to filter the page"
                    }
                }
            }
            table {
                thead { tr { th { "Entity" } th { "Uses" } th { "Plans" } th { "Balances" } } }
                tbody {
                    @for e in entities {
                        tr data-entity=(e.id) class=[is_selected(e).then_some("selected")] {
                            td {
                                a href=(path(id, Some(&e.id))) { strong { (e.label()) } }
                                span.sub.mono { (e.id) }
                            }
                            td { "1 × " (e.feature_id) }
                            td {
                                @if e.products.is_empty() {
                                    span.none { "the customer's" }
                                }
                                @for p in &e.products {
                                    span.plan { (p.plan_id) " " (badge(&p.status)) } " "
                                }
                            }
                            td {
                                @if e.balances.is_empty() {
                                    span.none { "the customer's" }
                                }
                                @for b in &e.balances {
                                    span.sub {
                                        (b.feature_id) ": "
                                        @if b.unlimited { "∞" } @else { (count(b.balance)) " left" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Above the plans of a selected entity: whose they are.
pub(super) fn banner(id: &str, entity: &EntityView) -> Markup {
    html! {
        div.banner.notice #entity-filter {
            span.message {
                "Showing entity " strong { (entity.label()) } " (" span.mono { (entity.id) } "): its own plans and balances. "
                "A feature no plan of its grants uses the customer's balance. Invoices and the timeline are the customer's."
            }
            a href=(path(id, None)) { "Show the whole customer" }
        }
    }
}

/// Asked for an entity the customer does not have (deleted meanwhile, a stale link).
pub(super) fn unknown(id: &str, entity: &str) -> Markup {
    html! {
        div.banner.notice {
            span.message { "The customer has no entity " span.mono { (entity) } ": showing the customer." }
            a href=(path(id, None)) { "Clear" }
        }
    }
}

/// The attach form's "For": the customer, or one of its entities (its own subscription).
pub(super) fn attach_choice(entities: &[EntityView], selected: Option<&EntityView>) -> Markup {
    if entities.is_empty() {
        return html! {};
    }
    html! {
        label { "For"
            select name="entity_id" {
                option value="" selected[selected.is_none()] { "The customer" }
                @for e in entities {
                    option value=(e.id) selected[selected.is_some_and(|s| s.id == e.id)] {
                        "Entity: " (e.label())
                    }
                }
            }
        }
    }
}
