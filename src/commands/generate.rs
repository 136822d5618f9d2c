//! `unredeemed generate`: a synthetic archive written where `--out` says.

use crate::archive::resolve;
use crate::error::Result;
use crate::generate::{self as generator, GenSpec, GenStats};

/// Writes the archive `spec` describes under `out` (a path or URL).
pub fn generate(spec: &GenSpec, out: &str, options: &[(String, String)]) -> Result<GenStats> {
    let loc = resolve(out, options, true)?;
    generator::generate(spec, &loc)
}
