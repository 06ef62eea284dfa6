//! `sqlx::migrate!` embeds `migrations/` at compile time; without this a new migration file is
//! not in the binary until something else makes cargo rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
