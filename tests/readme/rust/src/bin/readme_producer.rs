//! The root README's example "Exactly-once writes: the idempotent producer (Rust)", as a program (built from README.md by build.rs).

include!(concat!(env!("OUT_DIR"), "/readme_2.rs"));
