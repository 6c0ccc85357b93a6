//! Tools some tests run beside hako, installed by `cargo xtask test`: Prometheus's `promtool`
//! (to check `GET /metrics` with a real parser) and the headless browser's driver.

use std::path::PathBuf;

/// `promtool`: `HAKO_PROMTOOL`, else `target/tools/promtool` (where `cargo xtask test` puts
/// it), else the one in `PATH`. Panics, saying how to get it, when there is none.
#[track_caller]
pub fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("HAKO_PROMTOOL") {
        return PathBuf::from(p);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let installed = workspace.join("target/tools/promtool");
    if installed.exists() {
        return installed;
    }
    find("promtool").unwrap_or_else(|| {
        panic!(
            "this test checks /metrics with Prometheus's promtool, which is not installed: run `cargo xtask test` once (it puts promtool at {}), or set HAKO_PROMTOOL",
            installed.display()
        )
    })
}

/// `chromedriver` (Debian's `chromium-driver`) and `chromium`. Panics, saying how to get
/// them, when either is missing.
#[track_caller]
pub fn chromium() -> (PathBuf, PathBuf) {
    let missing = "this test drives a real headless Chromium: install Debian's chromium and chromium-driver (`cargo xtask test` does)";
    let driver = find("chromedriver").unwrap_or_else(|| panic!("{missing}"));
    let browser = find("chromium").unwrap_or_else(|| panic!("{missing}"));
    (driver, browser)
}

fn find(cmd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}
