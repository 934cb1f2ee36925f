//! `man`: the manual page, in roff.

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::write_out;
use crate::args::Cli;

pub(super) fn man() -> Result<u32> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .context("rendering the manual page")?;
    write_out(&out)?;
    Ok(0)
}
