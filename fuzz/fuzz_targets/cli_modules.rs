// The CLI modules the cli targets compile (the CLI is a binary, not a
// library), included by each of them.
#[path = "../../cli/src/args.rs"]
mod args;
#[path = "../../cli/src/defaults.rs"]
mod defaults;
#[path = "../../cli/src/fuzzing.rs"]
mod fuzzing;
// The decoders never look for a configuration file; the CLI's environment
// module (which needs the engine) is not compiled here.
mod env {
    pub fn config_dir() -> Option<std::path::PathBuf> {
        None
    }
}
// The robocopy job's parsers, without the rest of the job (a module path
// through a directory that does not exist here cannot be resolved).
#[path = "../../cli/src/job/alias.rs"]
pub mod alias;
#[path = "../../cli/src/job/file.rs"]
pub mod file;
#[path = "../../cli/src/job/table.rs"]
pub mod table;
mod job {
    pub use super::{alias, file, table};
}
#[path = "../../cli/src/schedule.rs"]
mod schedule;
