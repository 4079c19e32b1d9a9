//! The `latchkey` binary: parse the command line, load settings, start
//! telemetry, dispatch. Nothing else lives here.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = latchkey::cli::Cli::parse();
    latchkey::cli::run(cli)
}
