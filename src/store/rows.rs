//! The input rows of a set-based statement, written once for its two uses: many rows (its
//! array parameters unnested) and one (their first elements). Postgres plans a statement
//! over an `unnest` of parameters on every call (a generic plan expects ten rows, so the
//! one-row calls of the one-at-a-time path always win a custom plan, 0.1-0.2 ms of planning
//! each); over first elements it is planned once for the session.

use std::sync::OnceLock;

/// A set-based statement in its two forms, each written (by `sql(many)`) at its first use:
/// `static RECORD: Statement = Statement::new(record_sql);` then `RECORD.get(n > 1)`.
pub struct Statement {
    sql: fn(bool) -> String,
    many: OnceLock<String>,
    one: OnceLock<String>,
}

impl Statement {
    pub const fn new(sql: fn(bool) -> String) -> Self {
        Self {
            sql,
            many: OnceLock::new(),
            one: OnceLock::new(),
        }
    }

    /// The form for many rows, or for one.
    pub fn get(&'static self, many: bool) -> &'static str {
        let form = if many { &self.many } else { &self.one };
        form.get_or_init(|| (self.sql)(many))
    }
}

/// `SELECT`s the rows of `columns` (name, SQL type; bound in order as arrays `$1`, `$2`...),
/// numbered from 1 in column `n`: all of the arrays' rows when `many`, else the first.
pub fn input(many: bool, columns: &[(&str, &str)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    if many {
        let arrays: Vec<String> = (1..)
            .zip(columns)
            .map(|(n, (_, ty))| format!("${n}::{ty}[]"))
            .collect();
        format!(
            "SELECT * FROM unnest({}) WITH ORDINALITY AS i ({}, n)",
            arrays.join(", "),
            names.join(", ")
        )
    } else {
        let firsts: Vec<String> = (1..)
            .zip(columns)
            .map(|(n, (name, ty))| format!("(${n}::{ty}[])[1] AS {name}"))
            .collect();
        format!("SELECT {}, 1::bigint AS n", firsts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::{Statement, input};

    #[test]
    fn a_statement_keeps_each_form_it_wrote() {
        static PK: Statement = Statement::new(|many| input(many, &[("pk", "bigint")]));
        assert_eq!(
            PK.get(false),
            "SELECT ($1::bigint[])[1] AS pk, 1::bigint AS n"
        );
        assert!(
            PK.get(true)
                .starts_with("SELECT * FROM unnest($1::bigint[])")
        );
        assert!(std::ptr::eq(PK.get(false), PK.get(false)), "written once");
    }

    #[test]
    fn one_row_reads_the_first_elements_and_many_unnest_them() {
        let columns = [("pk", "bigint"), ("kind", "text")];
        assert_eq!(
            input(false, &columns),
            "SELECT ($1::bigint[])[1] AS pk, ($2::text[])[1] AS kind, 1::bigint AS n"
        );
        assert_eq!(
            input(true, &columns),
            "SELECT * FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS i (pk, kind, n)"
        );
    }
}
