//! The root README's example "Subscriptions: work queues and webhooks (Rust)", as a program (built from README.md by build.rs).

include!(concat!(env!("OUT_DIR"), "/readme_3.rs"));
