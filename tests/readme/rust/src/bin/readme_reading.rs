//! The root README's example "Reading (Rust)", as a program (built from README.md by build.rs).

include!(concat!(env!("OUT_DIR"), "/readme_1.rs"));
