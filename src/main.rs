//! The `dynakv` binary: a node (`serve`, or the short form `HOST PORT FILE`),
//! or the operator's client (`ctl`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("ctl") {
        return match dynakv::ops::ctl::run(&args[1..]) {
            Ok(text) => {
                println!("{}", text.trim_end());
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("dynakv ctl: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match dynakv::runtime::config::parse(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match dynakv::runtime::server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dynakv: {message}");
            ExitCode::FAILURE
        }
    }
}
