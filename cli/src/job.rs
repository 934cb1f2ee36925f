//! `backup` and `restore` as robocopy jobs (ROBOCOPY.md §3, §6, §8): the
//! switches and job files turned into engine options, the Options line and
//! saved jobs, and the frame both run in. The commands themselves, in
//! `commands/`, supply what differs.

pub mod alias;
pub mod file;
mod frame;
mod options;
mod prepare;
mod switches;
pub mod table;

pub(crate) use frame::{console, execute, header, times, with_hooks, JobKind, Outcome, RunJson, Shown};
pub(crate) use options::{
    attrs, copy_letters, dcopy_letters, job_options, parse_age, parse_duration, parse_size, run_options, usage,
};
pub(crate) use prepare::{filespec_check, prepare, validate};
pub(crate) use switches::{effective, save_and_quit};
