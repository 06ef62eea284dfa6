use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match stripe_reconciler::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print in full; bad input is one line and exit status 2.
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            let rendered = error.render().to_string();
            eprintln!(
                "{}",
                rendered.lines().next().unwrap_or("error: bad arguments")
            );
            return std::process::ExitCode::from(2);
        }
    };
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
