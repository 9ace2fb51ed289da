//! `/openapi.json` generates a working client: `openapi-python-client` turns the document into a
//! Python package (failing on any warning, so every operation and schema is generated), and a
//! script drives a real daemon through that package alone: create a session, exec with a view,
//! read its output, its context, a snapshot, and kill it.

use std::process::Command;

use super::http::{Server, require_python, run_with_deadline, script};

#[test]
fn a_generated_python_client_drives_the_api() {
    require_python("openapi_python_client");
    let s = Server::start();
    let (status, doc) = s.call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("openapi.json");
    std::fs::write(&doc_path, doc.to_string()).unwrap();
    let package = dir.path().join("ais_client");
    let (ok, out) = run_with_deadline(
        Command::new("python3")
            .args(["-m", "openapi_python_client", "generate", "--meta", "none"])
            .arg("--fail-on-warning")
            .arg("--path")
            .arg(&doc_path)
            .arg("--output-path")
            .arg(&package),
        300,
    );
    assert!(ok, "openapi-python-client failed:\n{out}");
    let (ok, out) = run_with_deadline(
        Command::new("python3")
            .arg(script("openapi_client.py"))
            .args([&s.url(), &s.token])
            .arg(dir.path()),
        180,
    );
    assert!(ok, "the generated client failed:\n{out}");
}
