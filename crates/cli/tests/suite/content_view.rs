//! The compact view never abridges content an agent asked to read: `cat` of a file comes back
//! whole up to the content size, then as head and tail with the `read` that returns exactly the
//! lines left out.

use super::harness::Env;

fn source(lines: usize) -> String {
    (1..=lines)
        .map(|i| format!("fn item_{i}() -> u32 {{ compute({i}, \"label {i}\") }}\n"))
        .collect()
}

#[test]
fn cat_comes_back_whole_then_head_and_tail_with_an_exact_read() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    // About 5,000 tokens: over the default view budget (1,500), under the content size.
    let small = env.home.path().join("small.rs");
    std::fs::write(&small, source(300)).unwrap();
    let r = env.exec("s", &format!("cat '{}'", small.display()));
    let view = &r["compact"];
    assert_eq!(view["whole"], true, "{view}");
    assert_eq!(view["text"], source(300));
    assert!(view["compact_tokens"].as_u64().unwrap() > 1500, "{view}");
    let out = env.run(&[
        "exec",
        "-t",
        "s",
        "--view",
        "compact",
        &format!("head -n 300 '{}'", small.display()),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), source(300));

    // Past the content size: head, tail, and one line saying exactly what was left out.
    let big = env.home.path().join("big.rs");
    std::fs::write(&big, source(3000)).unwrap();
    let r = env.exec("s", &format!("cat '{}'", big.display()));
    let view = &r["compact"];
    assert_eq!(view["whole"], false, "{view}");
    let text = view["text"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let all = source(3000);
    let file: Vec<&str> = all.lines().collect();
    let gap = lines.iter().position(|l| l.starts_with("[lines ")).unwrap();
    assert_eq!(lines[..gap], file[..gap]);
    let tail = &lines[gap + 1..];
    assert_eq!(tail, &file[file.len() - tail.len()..]);
    // Run the read the gap line names: it returns the left-out lines, no more, no less.
    let cmd = lines[gap].split('`').nth(1).unwrap();
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    assert_eq!(args[..3], ["read", "-t", "s"], "{cmd}");
    let read = env.json(&args);
    let middle: String = file[gap..file.len() - tail.len()]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(read["data"].as_str().unwrap(), middle);
}
