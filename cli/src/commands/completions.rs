//! `completions`: a shell's completion script.

use anyhow::Result;
use clap::CommandFactory;

use super::write_out;
use crate::args::Cli;

pub(super) fn completions(shell: clap_complete::Shell) -> Result<u32> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "robovault", &mut out);
    write_out(&out)?;
    Ok(0)
}
