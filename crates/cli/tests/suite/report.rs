//! `ai-session report` and `exec --view diagnostics` checked by their real consumers: the SARIF
//! 2.1.0 JSON schema (through Python's `jsonschema`), a JUnit parser (`junitparser`), GitHub's
//! workflow-command syntax, Vim's quickfix parser, and the HTTP API's JSON.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::harness::Env;

const BAD_C: &str = "int main(void) {\n    int unused;\n    return undefined_name;\n}\n";
const TESTS_PY: &str = "def test_passes():\n    assert 1 + 1 == 2\n\n\
                        def test_fails():\n    assert 'left' == 'right'\n";

/// A daemon with session `ci` in a project holding a C file that does not compile and a
/// pytest file with one failing test; both commands run.
fn project() -> (Env, tempfile::TempDir) {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.c"), BAD_C).unwrap();
    std::fs::write(dir.path().join("test_x.py"), TESTS_PY).unwrap();
    env.ok(&["new", "-s", "ci", "-c", dir.path().to_str().unwrap()]);
    let r = env.exec("ci", "gcc -Wall -c bad.c -o /dev/null");
    assert_eq!(r["exit_code"], 1, "{r}");
    let r = env.exec("ci", "python3 -m pytest -q -p no:cacheprovider test_x.py");
    assert_eq!(r["exit_code"], 1, "{r}");
    (env, dir)
}

fn require_python(module: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 cannot import {module}: run .ci/run's install step (python3 -m pip install {module})"
    );
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sarif_report_is_valid_against_the_sarif_2_1_0_schema() {
    require_python("jsonschema");
    let (env, dir) = project();
    let path = dir.path().join("report.sarif");
    env.ok(&[
        "report",
        "-t",
        "ci",
        "--format",
        "sarif",
        "-o",
        path.to_str().unwrap(),
    ]);
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/report/sarif-2.1.0-rtm.5.json"
    );
    let verdict = python(
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))\n\
         cls = jsonschema.validators.validator_for(schema)\n\
         cls.check_schema(schema)\n\
         errors = [e.message for e in cls(schema).iter_errors(doc)]\n\
         print('valid' if not errors else errors)",
        &[schema, path.to_str().unwrap()],
    );
    assert_eq!(verdict.trim(), "valid");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let gcc = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"]["driver"]["name"] == "gcc")
        .unwrap_or_else(|| panic!("no gcc run: {doc:#}"));
    assert_eq!(gcc["invocations"][0]["exitCode"], 1);
    assert_eq!(gcc["invocations"][0]["executionSuccessful"], false);
    let results = gcc["results"].as_array().unwrap();
    let levels: Vec<&str> = results
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert!(
        levels.contains(&"error") && levels.contains(&"warning"),
        "{levels:?}"
    );
    let error = results.iter().find(|r| r["level"] == "error").unwrap();
    let loc = &error["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "bad.c");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "SRCROOT");
    assert_eq!(loc["region"]["startLine"], 3);
    assert!(
        error["message"]["text"]
            .as_str()
            .unwrap()
            .contains("undefined_name"),
        "{error}"
    );
}

#[test]
fn junit_report_is_read_by_junitparser() {
    require_python("junitparser");
    let (env, dir) = project();
    let path = dir.path().join("junit.xml");
    env.ok(&[
        "report",
        "-t",
        "ci",
        "--format",
        "junit",
        "-o",
        path.to_str().unwrap(),
    ]);
    let parsed = python(
        "import json, sys\n\
         from junitparser import JUnitXml\n\
         xml = JUnitXml.fromfile(sys.argv[1])\n\
         out = []\n\
         for suite in xml:\n\
         \x20   cases = [[c.name, c.classname, [r.message for r in c.result]] for c in suite]\n\
         \x20   out.append({'name': suite.name, 'tests': suite.tests, 'failures': suite.failures,\n\
         \x20               'errors': suite.errors, 'skipped': suite.skipped, 'cases': cases})\n\
         print(json.dumps(out))",
        &[path.to_str().unwrap()],
    );
    let suites: Value = serde_json::from_str(&parsed).unwrap();
    let suites = suites.as_array().unwrap();
    assert_eq!(suites.len(), 1, "only the test run is a suite: {suites:?}");
    let s = &suites[0];
    assert!(s["name"].as_str().unwrap().contains("pytest"), "{s}");
    assert_eq!(
        (s["tests"].as_u64(), s["failures"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    let case = &s["cases"][0];
    assert_eq!(case[0], "test_fails", "{s}");
    assert_eq!(case[1], "test_x.py", "{s}");
    assert!(!case[2][0].as_str().unwrap().is_empty(), "{s}");
}

#[test]
fn github_report_is_workflow_commands_and_markdown_a_summary() {
    let (env, _dir) = project();
    let gh = env.ok(&["report", "-t", "ci", "--format", "github"]);
    let lines: Vec<&str> = gh.lines().collect();
    assert!(lines.len() >= 3, "{gh}");
    for line in &lines {
        assert!(is_workflow_command(line), "not a workflow command: {line}");
    }
    assert!(
        gh.contains("::error file=bad.c,line=3,col=12,title=gcc::"),
        "{gh}"
    );
    assert!(gh.contains("file=test_x.py,line=5"), "{gh}");
    let md = env.ok(&["report", "-t", "ci", "--format", "markdown"]);
    assert!(md.starts_with("## ai-session report: session ci"), "{md}");
    assert!(md.contains("2 commands, 2 failed."), "{md}");
    assert!(
        md.contains("| ❌ | `gcc -Wall -c bad.c -o /dev/null` | 1 |"),
        "{md}"
    );
    assert!(md.contains("1 passed, 1 failed"), "{md}");
    assert!(
        md.contains("### Failing tests") && md.contains("`test_x.py::test_fails`"),
        "{md}"
    );
    assert!(md.contains("**error** `bad.c:3:12`"), "{md}");
}

/// `::KIND file=F[,line=L[,col=C]],title=T::MESSAGE`, GitHub's annotation syntax: a known
/// kind, known properties (numbers where numbers go), a non-empty message.
fn is_workflow_command(line: &str) -> bool {
    {
        let Some(rest) = line.strip_prefix("::") else {
            return false;
        };
        let Some((head, message)) = rest.split_once("::") else {
            return false;
        };
        let Some((kind, props)) = head.split_once(' ') else {
            return false;
        };
        let props_ok = props.split(',').all(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                matches!(k, "file" | "line" | "col" | "title")
                    && !v.is_empty()
                    && (!matches!(k, "line" | "col") || v.bytes().all(|b| b.is_ascii_digit()))
            })
        });
        matches!(kind, "error" | "warning" | "notice")
            && props.starts_with("file=")
            && props_ok
            && !message.trim().is_empty()
    }
}

#[test]
fn report_for_a_task_covers_the_commands_its_agent_ran_while_it_was_open() {
    let (env, _dir) = project();
    let token = env
        .ok(&["agent", "register", "builder", "--session", "ci", "--keep"])
        .trim()
        .to_owned();
    let id = env
        .ok(&["task", "submit", "check the build"])
        .trim()
        .to_owned();
    let claimed = env.ok(&["task", "claim", "--token", &token]);
    let id = claimed.split('\t').next().unwrap_or(&id).to_owned();
    env.exec("ci", "echo during the task; (exit 2)");
    env.ok(&["task", "done", &id, "--token", &token]);
    env.exec("ci", "echo after the task");
    let bare = id.trim_start_matches("task-");
    let md = env.ok(&["report", "--task", bare, "--format", "markdown"]);
    assert!(md.contains("1 commands, 1 failed."), "{md}");
    assert!(md.contains("echo during the task"), "{md}");
    assert!(
        !md.contains("gcc") && !md.contains("after the task"),
        "{md}"
    );
    let out = env.run(&["report", "--format", "junit"]);
    assert!(!out.status.success(), "-t or --task is required");
    let out = env.run(&["report", "-t", "nope", "--format", "junit"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no session 'nope'"),
        "{err}"
    );
}

#[test]
fn diagnostics_view_is_read_by_vims_quickfix_parser() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.c"), BAD_C).unwrap();
    env.ok(&["new", "-s", "ed", "-c", dir.path().to_str().unwrap()]);
    let out = env.run(&[
        "exec",
        "-t",
        "ed",
        "--view",
        "diagnostics",
        "gcc -Wall -c bad.c -o /dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1), "the command's exit code");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    // gcc quotes names with the locale's quotation marks: the test does not depend on them.
    assert!(
        lines.iter().any(|l| l.starts_with("bad.c:3:12: error: ")
            && l.contains("undefined_name")
            && l.ends_with("undeclared (first use in this function)")),
        "{text}"
    );
    let errors = dir.path().join("errors.txt");
    std::fs::write(&errors, &text).unwrap();
    let qf = dir.path().join("qf.txt");
    let vim = Command::new("vim")
        .current_dir(dir.path())
        .args(["-es", "-u", "NONE", "-i", "NONE", "-N"])
        .arg("-c")
        .arg(format!("cgetfile {}", errors.display()))
        .arg("-c")
        .arg(format!(
            "call writefile(map(getqflist(), 'bufname(v:val.bufnr) . \"|\" . v:val.lnum . \"|\" . v:val.col . \"|\" . v:val.valid . \"|\" . v:val.text'), '{}')",
            qf.display()
        ))
        .arg("-c")
        .arg("qa!")
        .stdin(Stdio::null())
        .output()
        .expect("vim (apt-get install vim; .ci/run installs it)");
    assert!(vim.status.success(), "{vim:?}");
    let entries = std::fs::read_to_string(&qf).unwrap();
    let entries: Vec<&str> = entries.lines().collect();
    assert_eq!(entries.len(), lines.len(), "{entries:?} vs {lines:?}");
    for (entry, line) in entries.iter().zip(&lines) {
        let f: Vec<&str> = entry.splitn(5, '|').collect();
        assert_eq!(f[0], "bad.c", "{entry}");
        assert_eq!(f[3], "1", "vim read a valid location from {line}: {entry}");
        assert!(
            line.starts_with(&format!("bad.c:{}:{}:", f[1], f[2])),
            "{entry} vs {line}"
        );
    }
}

#[test]
fn diagnostics_are_json_in_the_http_api() {
    let (env, _dir) = project();
    let r = env.json(&["serve", "--listen", "127.0.0.1:0"]);
    let addr = r["listen"].as_str().unwrap().to_owned();
    let token = std::fs::read_to_string(r["token_file"].as_str().unwrap()).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let get = |path: &str| -> (u16, Value) {
        let a = super::harness::http(&addr, "GET", path, &[("Authorization", &auth)], "");
        (a.status, a.json())
    };
    let (status, history) = get("/v1/sessions/ci/results");
    assert_eq!(status, 200, "{history}");
    let execs = history["execs"].as_array().unwrap();
    assert_eq!(execs.len(), 2, "{history}");
    assert_eq!(execs[0]["seq"], 1);
    let (status, d) = get("/v1/sessions/ci/diagnostics?seq=1");
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["command"], "gcc -Wall -c bad.c -o /dev/null");
    let first = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["severity"] == "error")
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(first["file"], "bad.c");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(3), Some(12))
    );
    assert_eq!(first["source"], "gcc");
    // The newest exec (the test run): its failing test, as an error at its line.
    let (_, d) = get("/v1/sessions/ci/diagnostics");
    assert_eq!(d["seq"], 2, "{d}");
    let failure = &d["diagnostics"][0];
    assert_eq!(
        (failure["file"].as_str(), failure["line"].as_u64()),
        (Some("test_x.py"), Some(5)),
        "{d}"
    );
}
