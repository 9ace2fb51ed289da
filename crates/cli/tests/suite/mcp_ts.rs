//! `/mcp` driven by the official TypeScript MCP SDK over streamable HTTP, at protocol 2026-07-28
//! (`@modelcontextprotocol/client`) and 2025-11-25 (`@modelcontextprotocol/sdk`, ending its
//! session with `DELETE /mcp`): `crates/mcp/tests/mcp_ts_client.mjs`.

use std::path::PathBuf;
use std::process::Command;

use super::http::{Server, run_with_deadline};

#[test]
fn typescript_sdk_drives_mcp_over_http_at_both_protocol_versions() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sdk = root.join(".ci/peers/mcp-ts");
    assert!(
        sdk.join("node_modules/@modelcontextprotocol/client")
            .is_dir()
            && sdk.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "the TypeScript MCP SDK is missing from {}: run .ci/run's install step",
        sdk.display()
    );
    let s = Server::start();
    let (ok, out) = run_with_deadline(
        Command::new("node")
            .arg(root.join("crates/mcp/tests/mcp_ts_client.mjs"))
            .arg(&sdk)
            .arg("http")
            .args([&s.url(), &s.token]),
        240,
    );
    assert!(ok, "mcp_ts_client.mjs over HTTP failed:\n{out}");
    assert!(out.contains("2026-07-28 over http: ok"), "{out}");
    assert!(out.contains("2025-11-25 over http: ok"), "{out}");
}
