//! A repository: where it is ([`location`]), how the caller reaches it
//! ([`options`]: the location, S3 settings, cache directory and clock built
//! at the command line's edge), opening it by location ([`open`]), the
//! repository on a local disk ([`local`]: store, index, locks) and the one
//! in an object store with its local index cache ([`remote`]).

pub(crate) mod keys;
pub(crate) mod local;
pub(crate) mod location;
mod open;
pub(crate) mod options;
pub(crate) mod remote;
