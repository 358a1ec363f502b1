//! The `dynakv` binary: a node (`serve`, or the short form `HOST PORT FILE`,
//! see [`dynakv::runtime::config`]). `dynakv ctl ...` runs the operator's
//! client, the `dynakv-ctl` binary beside this one.

use dynakv::runtime::config::{self, NodeCommand};
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("ctl") {
        let ctl = std::env::current_exe().map(|exe| exe.with_file_name("dynakv-ctl"));
        let error = match ctl {
            Ok(path) => std::process::Command::new(&path).args(args.skip(1)).exec(),
            Err(error) => error,
        };
        eprintln!("dynakv ctl: cannot run dynakv-ctl beside this binary: {error}");
        return ExitCode::FAILURE;
    }
    match config::parse(args) {
        Ok(NodeCommand::Print(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(NodeCommand::Serve(config)) => match dynakv::runtime::server::serve(*config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("dynakv: {message}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("dynakv: {message}");
            ExitCode::from(2)
        }
    }
}
