// The CLI modules the cli targets compile (the CLI is a binary, not a
// library), included by each of them.
#[path = "../../cli/src/alias.rs"]
mod alias;
#[path = "../../cli/src/args.rs"]
mod args;
#[path = "../../cli/src/defaults.rs"]
mod defaults;
#[path = "../../cli/src/fuzzing.rs"]
mod fuzzing;
#[path = "../../cli/src/jobfile.rs"]
mod jobfile;
#[path = "../../cli/src/schedule.rs"]
mod schedule;
