//! The `dynakv` binary: a node (`serve`, or the short form `HOST PORT FILE`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match dynakv::config::parse(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match dynakv::server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dynakv: {message}");
            ExitCode::FAILURE
        }
    }
}
