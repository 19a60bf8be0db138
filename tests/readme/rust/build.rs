//! Copies the root README's ```rust blocks into OUT_DIR (readme_0.rs, ...) for the programs in
//! src/bin, with the examples' server address (`http://127.0.0.1:4437`) replaced by
//! `DS_README_SERVER` when it is set.

use std::{env, fs, path::PathBuf};

const EXAMPLE_SERVER: &str = "http://127.0.0.1:4437";
/// src/bin holds one program per block: the README and this number change together.
const BLOCKS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let readme = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../../README.md");
    println!("cargo:rerun-if-changed={}", readme.display());
    println!("cargo:rerun-if-env-changed=DS_README_SERVER");
    let server = env::var("DS_README_SERVER").unwrap_or_else(|_| EXAMPLE_SERVER.to_owned());
    let text = fs::read_to_string(&readme)?;
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.starts_with("```rust") => current = Some(String::new()),
            Some(code) if line.starts_with("```") => {
                blocks.push(std::mem::take(code));
                current = None;
            }
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    if blocks.len() != BLOCKS {
        return Err(format!(
            "README.md has {} rust blocks, tests/readme/rust/src/bin has programs for {BLOCKS}",
            blocks.len()
        )
        .into());
    }
    let out = PathBuf::from(env::var("OUT_DIR")?);
    for (i, code) in blocks.iter().enumerate() {
        fs::write(
            out.join(format!("readme_{i}.rs")),
            code.replace(EXAMPLE_SERVER, &server),
        )?;
    }
    Ok(())
}
