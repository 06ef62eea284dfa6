//! `/console/customers`: the list (search, plan and status filters, pages) and "Create
//! customer", through the functions of `GET` and `POST /v1/customers`.

use maud::{Markup, html};

use super::actions::ConsoleAction;
use super::form::Form;
use super::layout::{self, Section, badge, customer_path, query_value, when};
use super::{Back, Planned, Reply, View};
use crate::domain::{self, Limit};
use crate::ops::customers::NewCustomer;
use crate::ops::search::{self, ListQuery, PLAN_STATUSES};
use crate::views::ListedCustomer;
use crate::web::ApiError;

/// Customers on one page.
const PAGE: i64 = 25;

/// The list's filters, as the console's query string has them.
#[derive(Default)]
struct Filters {
    search: String,
    plan: String,
    status: String,
    cursor: Option<String>,
}

impl Filters {
    fn parse(query: Option<&str>) -> Self {
        let mut f = Self::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let value = value.trim().to_owned();
            match key.as_ref() {
                "search" => f.search = value,
                "plan" => f.plan = value,
                "status" => f.status = value,
                "cursor" if !value.is_empty() => f.cursor = Some(value),
                _ => {}
            }
        }
        f
    }

    /// The list's query for this page.
    fn list_query(&self) -> Result<ListQuery, ApiError> {
        let given = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
        Ok(ListQuery {
            search: given(&self.search),
            plan_id: domain::parse_opt("plan_id", given(&self.plan).as_deref())?,
            status: given(&self.status),
            limit: Limit::try_from(PAGE).expect("a page size within bounds"),
            cursor: self.cursor.clone(),
        })
    }

    /// The console's link to this list at `cursor`.
    fn link(&self, cursor: Option<&str>) -> String {
        let mut link = format!(
            "/console/customers?search={}&plan={}&status={}",
            query_value(&self.search),
            query_value(&self.plan),
            query_value(&self.status)
        );
        if let Some(cursor) = cursor {
            link.push_str("&cursor=");
            link.push_str(&query_value(cursor));
        }
        link
    }

    fn any(&self) -> bool {
        !(self.search.is_empty() && self.plan.is_empty() && self.status.is_empty())
    }
}

pub(super) async fn page(view: &View<'_>, query: Option<&str>) -> Reply {
    let filters = Filters::parse(query);
    let listed = match filters.list_query() {
        Ok(query) => search::list(&view.state.ops, &query)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    let page = match listed {
        Ok(page) => page,
        Err(error) => return Reply::error(error),
    };
    let catalog = &view.state.ops.catalog;
    let content = html! {
        div.page-head {
            div {
                h1 { "Customers" }
                p.subtitle { span { "Newest first" } span { "press " kbd { "N" } " to create one" } }
            }
            div.actions { (create_sheet(&view.csrf)) }
        }
        section.panel {
            form.filters method="get" action="/console/customers" role="search" {
                input type="search" name="search" value=(filters.search)
                    placeholder="Search by name, email or ID" aria-label="Search customers";
                select name="plan" aria-label="Plan" {
                    option value="" { "All plans" }
                    @for plan in &catalog.plans {
                        option value=(plan.id) selected[filters.plan == plan.id] { (plan.name) }
                    }
                }
                select name="status" aria-label="Status" {
                    option value="" { "Any status" }
                    @for status in PLAN_STATUSES {
                        option value=(status) selected[filters.status == *status] {
                            (status.replace('_', " "))
                        }
                    }
                }
                button type="submit" { "Search" }
                @if filters.any() {
                    a href="/console/customers" { "Clear" }
                }
            }
            @if page.data.is_empty() {
                p.empty { "No customers match." }
            } @else {
                table {
                    thead { tr { th { "Customer" } th { "Plans" } th { "Signed up" } } }
                    tbody {
                        @for c in &page.data { (row(view, c)) }
                    }
                }
            }
            div.pager {
                @if filters.cursor.is_some() {
                    a href=(filters.link(None)) { "← First page" }
                }
                @if let Some(next) = &page.next_cursor {
                    a href=(filters.link(Some(next))) rel="next" { "Next page →" }
                }
            }
        }
    };
    view.page("Customers", Section::Customers, content)
}

fn row(view: &View<'_>, c: &ListedCustomer) -> Markup {
    let title = c
        .name
        .as_deref()
        .or(c.email.as_deref())
        .or(c.id.as_deref())
        .unwrap_or("(no name)");
    let sub: Vec<&str> = [c.id.as_deref(), c.email.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| *s != title)
        .collect();
    html! {
        tr {
            td {
                @match &c.id {
                    Some(id) => a.customer href=(customer_path(id)) { (title) },
                    None => span { (title) },
                }
                @if !sub.is_empty() { span.sub { (sub.join(" · ")) } }
            }
            td {
                div.plans {
                    @for p in &c.plans {
                        span.plan-chip {
                            (view.state.ops.catalog.plan(&p.plan_id).map_or(p.plan_id.as_str(), |plan| plan.name.as_str()))
                            (badge(&p.status))
                        }
                    }
                    @if c.plans.is_empty() { span.none { "no plan" } }
                }
            }
            td { (when(c.created_at)) }
        }
    }
}

fn create_sheet(csrf: &str) -> Markup {
    html! {
        details.sheet.primary #create-customer {
            summary { "Create customer" }
            div.sheet-body {
                h3 { "Create customer" }
                form method="post" action="/console/customers" {
                    (layout::csrf_field(csrf))
                    label { "ID (your app's user id)" input name="id" autocomplete="off"; }
                    label { "Name" input name="name" autocomplete="off"; }
                    label { "Email" input name="email" type="email" autocomplete="off"; }
                    div.foot {
                        span { "An ID or an email is required · " kbd { "⌘/Ctrl ↵" } }
                        button.primary type="submit" { "Create" }
                    }
                }
            }
        }
    }
}

/// `POST /console/customers`: `POST /v1/customers`' get-or-create; then the new customer's
/// page (a customer created with an email only has no page of its own: the list, searched).
pub(super) fn create_action(form: &Form) -> Planned {
    let id = form.text("id");
    let email = form.text("email");
    let back = match (&id, &email) {
        (Some(id), _) => Back::Created(customer_path(id)),
        (None, Some(email)) => {
            Back::Created(format!("/console/customers?search={}", query_value(email)))
        }
        (None, None) => Back::To("/console/customers".to_owned()),
    };
    let action = domain::parse_opt("id", id.as_deref()).map(|id| {
        ConsoleAction::CreateCustomer(NewCustomer {
            id,
            name: form.text("name"),
            email,
            ..NewCustomer::default()
        })
    });
    (action.map_err(ApiError::from), back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_query_becomes_the_lists() {
        let f = Filters::parse(Some("search=+ada+&plan=pro&status=&cursor=42&x=1"));
        let q = f.list_query().unwrap();
        assert_eq!(q.search.as_deref(), Some("ada"));
        assert_eq!(q.plan_id.as_ref().map(|p| p.as_str()), Some("pro"));
        assert_eq!(q.status, None);
        assert_eq!(q.limit.get(), 25);
        assert_eq!(q.cursor.as_deref(), Some("42"));
        assert_eq!(
            f.link(Some("7")),
            "/console/customers?search=ada&plan=pro&status=&cursor=7"
        );
    }
}
