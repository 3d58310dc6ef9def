//! Lists the D1 migration files (`migrations/NNNN_name.sql`) for the adapter, which records
//! them in wrangler's `d1_migrations` ledger once the core has applied their versions.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time (cargo sets it for every build script run): a compiled-in path would
    // point at wherever the build script was first built when the target dir is shared
    // between checkouts.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".sql")?;
            let version = stem.split('_').next()?.parse().ok()?;
            Some((version, name))
        })
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for (version, name) in &files {
        writeln!(out, "    ({version}, {name:?}),").expect("writing to a string");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("d1_migrations.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}
