use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = stripe_reconciler::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(stripe_reconciler::cli::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("stripe-reconciler: {error:#}");
            stripe_reconciler::cli::exit_code(&error)
        }
    }
}
