// SPDX-License-Identifier: GPL-2.0

//! `ktr`, the command line of kvm-tce-replay on the client crate: `probe` (is the module there,
//! what does it answer), `stats` (every live table and its last replay, from debugfs) and `demo`
//! (the 128 TiB DDW scenario `make run` shows).

mod demo;
mod probe;
mod stats;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Probe /dev/kvm-tce-replay, list its tables, run the demo scenario.
#[derive(Parser)]
#[command(name = "ktr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Is the module loaded and the device there; its capabilities, mock backend, page size and
    /// ioctl numbers. Exits 1 if the device cannot be used.
    Probe {
        /// The device to open.
        #[arg(long, default_value = kvm_tce_replay::DEVICE)]
        device: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The module's memory and every live table with its last replay, from debugfs.
    Stats {
        /// The debugfs file to read.
        #[arg(long, default_value = stats::TABLES)]
        file: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The 128 TiB DDW scenario: a window of 2^31 64 KiB TCEs, 1 GiB of TCEs, two IOMMU groups attached and
    /// replayed in the kernel (needs the module loaded with mock=1).
    Demo,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Probe { device, json } => probe::run(&device, json),
        Command::Stats { file, json } => stats::run(&file, json),
        Command::Demo => demo::run(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ktr: {e}");
            ExitCode::FAILURE
        }
    }
}
