//! The `dynakv` command line: a node (`serve`, or the short form `HOST PORT
//! FILE` the course's scripts use) or the operator's client (`ctl`).

use crate::ops::ctl::CtlArgs;
use crate::runtime::config::{Config, NodeOptions};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "dynakv",
    version,
    about = "A Dynamo-style key-value store speaking the CPEN 431 UDP protocol",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "The short form `dynakv HOST PORT SERVERS_FILE [options]` is `dynakv serve --listen HOST:PORT --servers SERVERS_FILE [options]`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Short form: the address to listen on
    #[arg(required = true)]
    host: Option<String>,
    /// Short form: the UDP port
    #[arg(required = true, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Short form: the file listing every node as host:port, one per line
    #[arg(required = true, value_name = "SERVERS_FILE")]
    servers_file: Option<PathBuf>,
    #[command(flatten)]
    options: NodeOptions,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node
    Serve {
        /// Address to listen on, for clients and peers alike
        #[arg(long, value_name = "HOST:PORT")]
        listen: String,
        /// File listing every node as host:port, one per line
        #[arg(long, value_name = "FILE")]
        servers: PathBuf,
        #[command(flatten)]
        options: NodeOptions,
    },
    /// Query and drive a running cluster
    Ctl(CtlArgs),
}

/// What the command line asks for.
pub enum Action {
    Serve(Config),
    Ctl(CtlArgs),
}

impl Cli {
    pub fn action(self) -> Action {
        match self.command {
            Some(Command::Serve {
                listen,
                servers,
                options,
            }) => Action::Serve(options.config(listen, servers)),
            Some(Command::Ctl(args)) => Action::Ctl(args),
            None => {
                // clap has checked all three are present (`required`).
                let host = self.host.unwrap_or_default();
                let port = self.port.unwrap_or_default();
                let servers = self.servers_file.unwrap_or_default();
                Action::Serve(self.options.config(format!("{host}:{port}"), servers))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MIB;

    fn config(line: &str) -> Result<Config, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("dynakv").chain(line.split_whitespace())).map_err(|e| e.to_string())?;
        match cli.action() {
            Action::Serve(config) => Ok(config),
            Action::Ctl(_) => Err("ctl".into()),
        }
    }

    #[test]
    fn short_form_matches_serve_with_or_without_options() {
        let short = config("127.0.0.1 4000 servers.txt").unwrap();
        let long = config("serve --listen 127.0.0.1:4000 --servers servers.txt").unwrap();
        assert_eq!(short, long);
        assert_eq!(short.memory_limit_bytes, 64 * MIB);
        let short = config("127.0.0.1 4000 servers.txt --memory-limit 128 --replicas 2").unwrap();
        let long =
            config("serve --listen 127.0.0.1:4000 --servers servers.txt --memory-limit 128 --replicas 2").unwrap();
        assert_eq!(short, long);
        assert_eq!((short.memory_limit_bytes, short.replicas), (128 * MIB, 2));
    }

    #[test]
    fn errors_name_the_option_and_its_range() {
        let error = config("serve --listen a:1 --servers s --reply-cache-ms 100").unwrap_err();
        assert!(
            error.contains("--reply-cache-ms") && error.contains("5000..=600000"),
            "{error}"
        );
        let error = config("127.0.0.1 4000 s --replicas 9").unwrap_err();
        assert!(error.contains("--replicas") && error.contains("1..=7"), "{error}");
        assert!(config("serve --servers s").unwrap_err().contains("--listen"));
        assert!(
            config("serve --listen a:1 --servers s --bogus")
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(config("127.0.0.1 notaport s").unwrap_err().contains("PORT"));
        assert!(config("127.0.0.1 4000").is_err());
        let error = config("serve --listen a:1 --servers s --admin-allow 10.0.0.0/99").unwrap_err();
        assert!(error.contains("--admin-allow"), "{error}");
    }

    #[test]
    fn ctl_is_a_subcommand() {
        assert_eq!(config("ctl status").unwrap_err(), "ctl");
    }
}
