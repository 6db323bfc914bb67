//! Every "method §X" reference in the repository (code comments, scripts, scenarios, documents)
//! must name a section of docs/method.md: `§X` for a top-level `## X.` heading, `§X.Y` for a
//! `### X.Y ` heading. The word "method" is matched in any case, so the older upper-case form
//! "METHOD §X" is checked too. A range such as "method §3.1–3.2" checks both ends.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::files_under;

/// Folders scanned for source-like files, and the extensions kept in them.
const CODE_DIRS: [&str; 4] = ["src", "crates", "tests", "benches"];
const CODE_EXTENSIONS: [&str; 3] = ["rs", "sh", "py"];
/// Folders scanned whole (every file).
const ALL_FILE_DIRS: [&str; 2] = ["scenarios", "docs"];
/// Single files scanned.
const FILES: [&str; 1] = ["README.md"];

/// Section numbers defined by docs/method.md: ("2", true) for `## 2. Metrics`, ("2.1", false)
/// for `### 2.1 ...`.
#[derive(Default)]
struct Sections {
    top: BTreeSet<String>,
    sub: BTreeSet<String>,
}

impl Sections {
    fn parse(text: &str) -> Self {
        let mut s = Sections::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("## ") {
                // `## N.` followed by a space (or the end of the line).
                let token = rest.split(' ').next().unwrap_or("");
                if let Some(n) = token.strip_suffix('.')
                    && is_number(n)
                    && !n.contains('.')
                {
                    s.top.insert(n.to_string());
                }
            } else if let Some(rest) = line.strip_prefix("### ") {
                // `### N.M ` followed by a space.
                if let Some((token, _)) = rest.split_once(' ')
                    && is_number(token)
                    && token.contains('.')
                {
                    s.sub.insert(token.to_string());
                }
            }
        }
        s
    }

    fn resolves(&self, number: &str) -> bool {
        if number.contains('.') {
            self.sub.contains(number)
        } else {
            self.top.contains(number)
        }
    }
}

/// Digits separated by single dots, e.g. `8`, `8.1`; no leading, trailing or doubled dot.
fn is_number(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads a section number at the start of `s`: digits, then any number of `.digits`. A dot not
/// followed by a digit is sentence punctuation and is not part of the number. Returns the number
/// and the byte length consumed.
fn leading_number(s: &str) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    while i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some((&s[..i], i))
}

/// The section numbers referenced on one line as `method §X` (any case of "method"), including
/// the end of a range `method §X–Y` / `method §X-Y`.
fn references_in_line(line: &str) -> Vec<String> {
    const WORD: &str = "method";
    const MARK: &str = " §";
    let lower = line.to_ascii_lowercase(); // ASCII-only lowering keeps byte offsets aligned
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(WORD) {
        let start = from + pos;
        from = start + WORD.len();
        // "method" must start a word (not e.g. "_method" or "xmethod").
        let before = lower[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(rest) = line[from..].strip_prefix(MARK) else {
            continue;
        };
        let Some((number, used)) = leading_number(rest) else {
            continue;
        };
        found.push(number.to_string());
        // A range: "§3.1–3.2" or "§3.1-3.2".
        let tail = &rest[used..];
        let after_dash = tail.strip_prefix('–').or_else(|| tail.strip_prefix('-'));
        if let Some((end, _)) = after_dash.and_then(leading_number) {
            found.push(end.to_string());
        }
    }
    found
}

fn scanned_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in CODE_DIRS {
        files.extend(files_under(&root.join(dir), Some(&CODE_EXTENSIONS)));
    }
    for dir in ALL_FILE_DIRS {
        files.extend(files_under(&root.join(dir), None));
    }
    for file in FILES {
        let path = root.join(file);
        if path.is_file() {
            files.push(path);
        }
    }
    files
}

/// `path:line: method §X` for every reference under `root` that docs/method.md does not define,
/// plus the number of references checked.
fn unresolved(root: &Path, sections: &Sections) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let mut checked = 0;
    for path in scanned_files(root) {
        let Ok(bytes) = fs::read(&path) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        for (i, line) in text.lines().enumerate() {
            for number in references_in_line(line) {
                checked += 1;
                if !sections.resolves(&number) {
                    bad.push(format!("{shown}:{}: method §{number}", i + 1));
                }
            }
        }
    }
    (bad, checked)
}

fn method_sections(root: &Path) -> Sections {
    let path = root.join("docs").join("method.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Sections::parse(&text)
}

#[test]
fn every_method_reference_names_a_section_of_docs_method_md() {
    let root = crate::common::root();
    let sections = method_sections(root);
    assert!(
        !sections.top.is_empty() && !sections.sub.is_empty(),
        "docs/method.md defines no `## N.` / `### N.M ` headings"
    );
    let (bad, checked) = unresolved(root, &sections);
    assert!(
        bad.is_empty(),
        "{} of {checked} method references do not match a heading of docs/method.md \
         (`## N.` for §N, `### N.M ` for §N.M):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn subsections_sit_under_their_top_level_section() {
    let root = crate::common::root();
    let text = fs::read_to_string(root.join("docs").join("method.md")).expect("docs/method.md");
    let mut current: Option<String> = None;
    let mut misplaced = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let one = Sections::parse(line);
        if let Some(top) = one.top.into_iter().next() {
            current = Some(top);
        } else if let Some(sub) = one.sub.into_iter().next() {
            let parent = sub.split('.').next().unwrap_or("");
            if current.as_deref() != Some(parent) {
                misplaced.push(format!("docs/method.md:{}: ### {sub} under ## {current:?}", i + 1));
            }
        }
    }
    assert!(misplaced.is_empty(), "misplaced subsections:\n{}", misplaced.join("\n"));
}

#[test]
fn reference_parsing() {
    let refs = |s: &str| references_in_line(s);
    assert_eq!(refs("see method §2.1 for r"), ["2.1"]);
    assert_eq!(refs("// METHOD §8."), ["8"]);
    assert_eq!(refs("(Method §4.5, §6.1)"), ["4.5"]);
    assert_eq!(
        refs("METHOD §3.1–3.2 and method §8.3-8.4."),
        ["3.1", "3.2", "8.3", "8.4"]
    );
    assert_eq!(refs("method §10.6."), ["10.6"]);
    assert!(refs("no reference: method section, §2.1, METHOD.md §4, amethod §2").is_empty());
    let sections = Sections::parse("## 2. Metrics\n### 2.1 Retained r\n## 10. Numbers\n### 10.6 Table\n");
    assert!(sections.resolves("2") && sections.resolves("2.1") && sections.resolves("10.6"));
    assert!(!sections.resolves("2.2") && !sections.resolves("3") && !sections.resolves("10.6.1"));
}
