//! The root README's example "Quick start (Rust)", as a program (built from README.md by build.rs).

include!(concat!(env!("OUT_DIR"), "/readme_0.rs"));
