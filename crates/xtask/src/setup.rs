//! `cargo xtask setup`: the system packages RocksDB's build needs, and the
//! headless browser the server's browser-demo test drives (Debian's
//! `chromium` and `chromium-driver`; without them that test skips).
//!
//! `librocksdb-sys` compiles RocksDB's C++ with the system C++ compiler and,
//! with the `bindgen-runtime` feature, generates its bindings with bindgen,
//! which loads libclang at build time and asks the `clang` binary for the
//! system include paths. Detection is split in two: [`Inputs`] gathers what
//! the system offers (environment variables, `llvm-config`, a filesystem
//! root), and [`check`] decides from those alone, so tests can point it at a
//! scratch directory tree.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::{display_command, run_step};
use crate::Error;

/// The Debian packages that provide everything [`check`] and
/// [`check_browser`] look for.
pub const APT_PACKAGES: [&str; 5] = [
    "clang",
    "libclang-dev",
    "g++",
    "chromium",
    "chromium-driver",
];

/// The command a user without root privileges is told to run.
pub fn sudo_install_command() -> String {
    format!("sudo apt-get install -y {}", APT_PACKAGES.join(" "))
}

/// What the system offers, gathered once; [`check`] decides from this alone.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `PATH`.
    pub path: Option<OsString>,
    /// `CXX`: the C++ compiler the `cc` crate uses when set.
    pub cxx: Option<OsString>,
    /// `CLANG_PATH`: the clang binary clang-sys uses when set.
    pub clang_path: Option<OsString>,
    /// `LIBCLANG_PATH`: a directory holding libclang, or the file itself.
    pub libclang_path: Option<OsString>,
    /// `llvm-config --libdir`, when `llvm-config` runs.
    pub llvm_libdir: Option<PathBuf>,
    /// `llvm-config --bindir`, when `llvm-config` runs.
    pub llvm_bindir: Option<PathBuf>,
    /// Where the well-known library directories are looked up: `/` for real.
    pub root: PathBuf,
}

impl Inputs {
    /// Gathers the inputs from this process's environment and filesystem.
    pub fn from_system() -> Self {
        let path = std::env::var_os("PATH");
        let llvm_config = path
            .as_deref()
            .and_then(|p| find_executable(OsStr::new("llvm-config"), p));
        let llvm_dir = |flag: &str| {
            llvm_config
                .as_ref()
                .and_then(|program| command_stdout(Command::new(program).arg(flag)))
                .map(|dir| PathBuf::from(dir.trim()))
                .filter(|dir| !dir.as_os_str().is_empty())
        };
        Inputs {
            llvm_libdir: llvm_dir("--libdir"),
            llvm_bindir: llvm_dir("--bindir"),
            path,
            cxx: non_empty_env("CXX"),
            clang_path: non_empty_env("CLANG_PATH"),
            libclang_path: non_empty_env("LIBCLANG_PATH"),
            root: PathBuf::from("/"),
        }
    }
}

fn non_empty_env(key: &str) -> Option<OsString> {
    std::env::var_os(key).filter(|value| !value.is_empty())
}

/// Runs a command quietly and returns its stdout if it succeeds.
fn command_stdout(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if output.status.success() {
        String::from_utf8(output.stdout).ok()
    } else {
        None
    }
}

/// One requirement and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is required, e.g. `libclang`.
    pub name: &'static str,
    /// Where it was looked for, for the error message.
    pub looked_for: String,
    /// The file that satisfies it, if any.
    pub found: Option<PathBuf>,
}

/// Checks each requirement: a C++ compiler, clang and libclang.
pub fn check(inputs: &Inputs) -> Vec<Check> {
    let empty = OsString::new();
    let path = inputs.path.as_deref().unwrap_or(&empty);
    vec![
        check_cxx(inputs, path),
        check_clang(inputs, path),
        check_libclang(inputs),
    ]
}

/// The names of [`check_browser`]'s requirements: missing, they make
/// setup install them as root and only warn otherwise (the test skips).
const BROWSER_CHECKS: [&str; 2] = ["chromium", "chromedriver"];

/// Checks what the server's browser-demo test drives: `chromium` and
/// `chromedriver` on `PATH`.
pub fn check_browser(inputs: &Inputs) -> Vec<Check> {
    let empty = OsString::new();
    let path = inputs.path.as_deref().unwrap_or(&empty);
    BROWSER_CHECKS
        .into_iter()
        .map(|program| Check {
            name: program,
            looked_for: format!("{program} on PATH"),
            found: find_executable(OsStr::new(program), path),
        })
        .collect()
}

/// Every requirement setup installs: [`check`] then [`check_browser`].
fn check_all(inputs: &Inputs) -> Vec<Check> {
    let mut checks = check(inputs);
    checks.extend(check_browser(inputs));
    checks
}

fn check_cxx(inputs: &Inputs, path: &OsStr) -> Check {
    let name = "C++ compiler";
    match &inputs.cxx {
        Some(cxx) => {
            // `CXX` may carry a wrapper or flags ("ccache g++"): the first
            // word is the program that must exist.
            let program = first_word(cxx);
            Check {
                name,
                looked_for: format!("CXX={}", cxx.to_string_lossy()),
                found: find_executable(&program, path),
            }
        }
        None => Check {
            name,
            looked_for: "c++ or g++ on PATH".to_string(),
            found: ["c++", "g++"]
                .iter()
                .find_map(|program| find_executable(OsStr::new(program), path)),
        },
    }
}

fn check_clang(inputs: &Inputs, path: &OsStr) -> Check {
    let name = "clang";
    if let Some(clang_path) = &inputs.clang_path {
        return Check {
            name,
            looked_for: format!("CLANG_PATH={}", clang_path.to_string_lossy()),
            found: find_executable(clang_path, path),
        };
    }
    let from_llvm_config = || {
        let bindir = inputs.llvm_bindir.as_ref()?;
        find_executable(bindir.join("clang").as_os_str(), path)
    };
    Check {
        name,
        looked_for: "clang on PATH or in `llvm-config --bindir`".to_string(),
        found: find_executable(OsStr::new("clang"), path).or_else(from_llvm_config),
    }
}

fn check_libclang(inputs: &Inputs) -> Check {
    let dirs = libclang_search_dirs(inputs);
    let explicit_file = inputs
        .libclang_path
        .as_ref()
        .map(PathBuf::from)
        .filter(|p| p.is_file() && file_name_is_libclang(p));
    let found = explicit_file.or_else(|| dirs.iter().find_map(|dir| libclang_in_dir(dir)));
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Check {
        name: "libclang",
        looked_for: format!("libclang*.so* in {}", shown.join(", ")),
        found,
    }
}

fn first_word(value: &OsStr) -> OsString {
    let text = value.to_string_lossy();
    match text.split_whitespace().next() {
        Some(word) if word.len() != text.len() => OsString::from(word),
        // One word (or not valid UTF-8): keep the original bytes.
        _ => value.to_os_string(),
    }
}

/// Finds `name` as an executable file: directly if it holds a `/`,
/// otherwise in each directory of `path` (a `PATH`-style list).
pub fn find_executable(name: &OsStr, path: &OsStr) -> Option<PathBuf> {
    let as_path = Path::new(name);
    if as_path.components().count() > 1 || as_path.is_absolute() {
        return is_executable_file(as_path).then(|| as_path.to_path_buf());
    }
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    let Ok(metadata) = path.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// Whether a file name is a loadable libclang shared library:
/// `libclang.so`, `libclang.so.<N>…`, `libclang-<V>.so` or
/// `libclang-<V>.so.<N>…`, where `V` and `N` are dotted numbers. Static
/// archives and the other clang libraries (`libclang-cpp`, `libclangAST`)
/// do not count: bindgen cannot load them.
pub fn is_libclang_file_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("libclang") else {
        return false;
    };
    let rest = match rest.strip_prefix('-') {
        Some(versioned) => {
            let Some(dot_so) = versioned.find(".so") else {
                return false;
            };
            if !is_dotted_number(&versioned[..dot_so]) {
                return false;
            }
            &versioned[dot_so..]
        }
        None => rest,
    };
    match rest.strip_prefix(".so") {
        Some("") => true,
        Some(suffix) => suffix.strip_prefix('.').is_some_and(is_dotted_number),
        None => false,
    }
}

fn is_dotted_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

fn file_name_is_libclang(path: &Path) -> bool {
    path.file_name()
        .and_then(OsStr::to_str)
        .is_some_and(is_libclang_file_name)
}

/// The directories searched for libclang, in order: `LIBCLANG_PATH` (when
/// it is a directory), `llvm-config --libdir`, `/usr/lib/llvm-*/lib` (newest
/// version first), the multiarch `/usr/lib/*-linux-gnu*`, then `/usr/lib64`,
/// `/usr/lib` and `/usr/local/lib`. Directories that do not exist are left out.
pub fn libclang_search_dirs(inputs: &Inputs) -> Vec<PathBuf> {
    let usr_lib = inputs.root.join("usr").join("lib");
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(inputs.libclang_path.as_ref().map(PathBuf::from));
    dirs.extend(inputs.llvm_libdir.clone());

    let mut llvm_versions: Vec<(Vec<u32>, PathBuf)> = subdirs(&usr_lib)
        .filter_map(|(name, dir)| {
            let version = name.strip_prefix("llvm-")?;
            let key = version
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, dir.join("lib")))
        })
        .collect();
    llvm_versions.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(llvm_versions.into_iter().map(|(_, dir)| dir));

    let mut multiarch: Vec<PathBuf> = subdirs(&usr_lib)
        .filter(|(name, _)| name.contains("-linux-gnu"))
        .map(|(_, dir)| dir)
        .collect();
    multiarch.sort();
    dirs.extend(multiarch);

    dirs.push(inputs.root.join("usr").join("lib64"));
    dirs.push(usr_lib);
    dirs.push(inputs.root.join("usr").join("local").join("lib"));

    let mut unique: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        if dir.is_dir() && !unique.contains(&dir) {
            unique.push(dir);
        }
    }
    unique
}

/// The subdirectories of `dir` with UTF-8 names, as (name, path).
fn subdirs(dir: &Path) -> impl Iterator<Item = (String, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
}

/// The first libclang shared library in `dir`, by name.
pub fn libclang_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| file_name_is_libclang(path) && path.is_file())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The effective user id from the text of `/proc/self/status`.
pub fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    // Real, effective, saved set, filesystem.
    line["Uid:".len()..].split_whitespace().nth(1)?.parse().ok()
}

/// Whether this process runs as root: `/proc/self/status`, else `id -u`.
/// When neither answers, assume not.
pub fn is_root() -> bool {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_effective_uid(&status));
    let uid = from_proc.or_else(|| {
        command_stdout(Command::new("id").arg("-u")).and_then(|out| out.trim().parse().ok())
    });
    uid == Some(0)
}

fn summary(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| match &c.found {
            Some(path) => format!("{} ({})", c.name, path.display()),
            None => format!("{} (missing)", c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing(checks: &[Check]) -> Vec<&Check> {
    checks.iter().filter(|c| c.found.is_none()).collect()
}

fn apt_commands(apt_get: &Path) -> [Command; 2] {
    let mut update = Command::new(apt_get);
    update.arg("update");
    let mut install = Command::new(apt_get);
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(APT_PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive");
    for command in [&mut update, &mut install] {
        command.stdin(Stdio::null());
    }
    [update, install]
}

/// Runs `cargo xtask setup`.
pub fn run() -> Result<(), Error> {
    let checks = check_all(&Inputs::from_system());
    let absent = missing(&checks);
    if absent.is_empty() {
        println!(
            "xtask: [setup] RocksDB's build requirements and the test browser are present: {}",
            summary(&checks)
        );
        return Ok(());
    }
    for c in &absent {
        eprintln!(
            "xtask: [setup] missing {}: looked for {}",
            c.name, c.looked_for
        );
    }
    let build_missing = absent.iter().any(|c| !BROWSER_CHECKS.contains(&c.name));
    if !is_root() && !build_missing {
        // Only the test browser: the build and the server work without
        // it, and the browser-demo test skips.
        eprintln!(
            "xtask: [setup] the browser-demo test will skip without chromium; install it with:\n    {}",
            sudo_install_command()
        );
        return Ok(());
    }
    if !is_root() {
        return Err(Error::MissingSystemPackages(format!(
            "RocksDB's build needs clang, libclang and a C++ compiler; the browser-demo test \
             needs chromium and chromedriver. Install them with:\n    {}",
            sudo_install_command()
        )));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(apt_get) = find_executable(OsStr::new("apt-get"), &path) else {
        return Err(Error::MissingSystemPackages(format!(
            "apt-get is not available: install clang, libclang, a C++ compiler, chromium and \
             chromedriver with this system's package manager (on Debian or Ubuntu: {})",
            sudo_install_command()
        )));
    };
    println!(
        "xtask: [setup] running as root: installing {} with apt-get",
        APT_PACKAGES.join(" ")
    );
    let [mut update, mut install] = apt_commands(&apt_get);
    run_step("setup: apt-get update", &mut update)?;
    run_step("setup: apt-get install", &mut install)?;

    let checks = check_all(&Inputs::from_system());
    let absent = missing(&checks);
    if absent.is_empty() {
        println!(
            "xtask: [setup] installed; RocksDB's build requirements and the test browser are present: {}",
            summary(&checks)
        );
        return Ok(());
    }
    let details: Vec<String> = absent
        .iter()
        .map(|c| format!("{} (looked for {})", c.name, c.looked_for))
        .collect();
    Err(Error::MissingSystemPackages(format!(
        "still missing after `{}`: {}",
        display_command(&install),
        details.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory tree, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "xtask-setup-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// Creates `relative` (and its parents); `mode` 0o755 makes it executable.
        fn file(&self, relative: &str, mode: u32) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            #[cfg(not(unix))]
            let _ = mode;
            path
        }

        fn inputs(&self) -> Inputs {
            Inputs {
                path: Some(self.0.join("usr/bin").into_os_string()),
                root: self.0.clone(),
                ..Inputs::default()
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn libclang_file_names() {
        let cases = [
            ("libclang.so", true),
            ("libclang.so.1", true),
            ("libclang.so.13", true),
            ("libclang-14.so", true),
            ("libclang-14.so.1", true),
            ("libclang-14.0.6.so", true),
            ("libclang-14.so.14.0.6", true),
            ("libclang-cpp.so.14", false),
            ("libclang-cpp.so", false),
            ("libclangAST.a", false),
            ("libclang.a", false),
            ("libclang.so.", false),
            ("libclang.so.1.", false),
            ("libclang.so.bak", false),
            ("libclang-.so", false),
            ("libclang-14", false),
            ("libclang-14.a", false),
            ("libclang-14..0.so", false),
            ("libclang", false),
            ("clang.so", false),
            ("libllvm.so", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_libclang_file_name(name), expected, "{name}");
        }
    }

    #[test]
    fn effective_uid_from_proc_status() {
        let cases = [
            ("Name:\tcat\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", Some(0)),
            ("Uid:\t1000\t1000\t1000\t1000\n", Some(1000)),
            // Real uid 1000, effective 0 (setuid): root for our purposes.
            ("Uid:\t1000\t0\t0\t0\n", Some(0)),
            ("Uid:\t0\t1000\t1000\t1000\n", Some(1000)),
            ("Name:\tcat\nGid:\t0\t0\t0\t0\n", None),
            ("Uid:\t0\n", None),
            ("Uid:\tx\ty\n", None),
            ("", None),
        ];
        for (status, expected) in cases {
            assert_eq!(parse_effective_uid(status), expected, "{status:?}");
        }
    }

    #[test]
    fn the_sudo_command_installs_every_package() {
        assert_eq!(
            sudo_install_command(),
            "sudo apt-get install -y clang libclang-dev g++ chromium chromium-driver"
        );
    }

    #[test]
    fn apt_commands_are_non_interactive() {
        let [update, install] = apt_commands(Path::new("apt-get"));
        assert_eq!(display_command(&update), "apt-get update");
        assert_eq!(
            display_command(&install),
            "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
             clang libclang-dev g++ chromium chromium-driver"
        );
    }

    /// (files to create with their modes, environment tweaks, expected names
    /// of the missing requirements).
    type Case = (
        &'static [(&'static str, u32)],
        fn(&Scratch, &mut Inputs),
        &'static [&'static str],
    );

    fn no_tweak(_: &Scratch, _: &mut Inputs) {}

    #[test]
    fn detection_on_scratch_trees() {
        const DEBIAN: &[(&str, u32)] = &[
            ("usr/bin/c++", 0o755),
            ("usr/bin/clang", 0o755),
            ("usr/lib/llvm-14/lib/libclang-14.so.1", 0o644),
        ];
        let cases: &[Case] = &[
            (&[], no_tweak, &["C++ compiler", "clang", "libclang"]),
            (DEBIAN, no_tweak, &[]),
            // Only g++, no c++ alternative.
            (
                &[
                    ("usr/bin/g++", 0o755),
                    ("usr/bin/clang", 0o755),
                    ("usr/lib/x86_64-linux-gnu/libclang-14.so.13", 0o644),
                ],
                no_tweak,
                &[],
            ),
            // Compilers present, libclang only as a static archive and libclang-cpp.
            (
                &[
                    ("usr/bin/c++", 0o755),
                    ("usr/bin/clang", 0o755),
                    ("usr/lib/llvm-14/lib/libclangAST.a", 0o644),
                    ("usr/lib/llvm-14/lib/libclang-cpp.so.14", 0o644),
                    ("usr/lib/x86_64-linux-gnu/libclang-cpp.so.14", 0o644),
                ],
                no_tweak,
                &["libclang"],
            ),
            // A non-executable file named c++ does not count.
            (
                &[
                    ("usr/bin/c++", 0o644),
                    ("usr/bin/clang", 0o755),
                    ("usr/lib/libclang.so", 0o644),
                ],
                no_tweak,
                &["C++ compiler"],
            ),
            // A library in /usr/lib64 or /usr/local/lib.
            (
                &[
                    ("usr/bin/c++", 0o755),
                    ("usr/bin/clang", 0o755),
                    ("usr/lib64/libclang.so.1", 0o644),
                ],
                no_tweak,
                &[],
            ),
            (
                &[
                    ("usr/bin/c++", 0o755),
                    ("usr/bin/clang", 0o755),
                    ("usr/local/lib/libclang.so", 0o644),
                ],
                no_tweak,
                &[],
            ),
            // llvm-config's directories, outside the well-known places.
            (
                &[
                    ("usr/bin/c++", 0o755),
                    ("opt/llvm/bin/clang", 0o755),
                    ("opt/llvm/lib/libclang.so", 0o644),
                ],
                |s, i| {
                    i.llvm_bindir = Some(s.0.join("opt/llvm/bin"));
                    i.llvm_libdir = Some(s.0.join("opt/llvm/lib"));
                },
                &[],
            ),
            // LIBCLANG_PATH as a directory, and as the file itself.
            (
                &[
                    ("usr/bin/c++", 0o755),
                    ("usr/bin/clang", 0o755),
                    ("custom/libclang-17.so", 0o644),
                ],
                |s, i| i.libclang_path = Some(s.0.join("custom").into_os_string()),
                &[],
            ),
            (
                &[
                    ("usr/bin/c++", 0o755),
                    ("usr/bin/clang", 0o755),
                    ("custom/libclang-17.so", 0o644),
                ],
                |s, i| i.libclang_path = Some(s.0.join("custom/libclang-17.so").into_os_string()),
                &[],
            ),
            // CXX names a wrapper plus compiler: the wrapper must exist.
            (
                DEBIAN,
                |_, i| i.cxx = Some("ccache-not-installed g++".into()),
                &["C++ compiler"],
            ),
            (DEBIAN, |_, i| i.cxx = Some("c++ -std=c++17".into()), &[]),
            // CLANG_PATH overrides the PATH lookup.
            (
                DEBIAN,
                |s, i| i.clang_path = Some(s.0.join("nowhere/clang").into_os_string()),
                &["clang"],
            ),
            // No PATH at all: the compilers cannot be found.
            (DEBIAN, |_, i| i.path = None, &["C++ compiler", "clang"]),
        ];
        for (index, (files, tweak, expected_missing)) in cases.iter().enumerate() {
            let scratch = Scratch::new();
            for (file, mode) in *files {
                scratch.file(file, *mode);
            }
            let mut inputs = scratch.inputs();
            tweak(&scratch, &mut inputs);
            let checks = check(&inputs);
            let missing: Vec<&str> = missing(&checks).iter().map(|c| c.name).collect();
            assert_eq!(missing, *expected_missing, "case {index}: {checks:#?}");
        }
    }

    #[test]
    fn the_browser_is_chromium_and_chromedriver_on_path() {
        let scratch = Scratch::new();
        scratch.file("usr/bin/chromium", 0o755);
        let checks = check_browser(&scratch.inputs());
        let absent: Vec<&str> = missing(&checks).iter().map(|c| c.name).collect();
        assert_eq!(absent, ["chromedriver"]);
        scratch.file("usr/bin/chromedriver", 0o755);
        assert!(missing(&check_browser(&scratch.inputs())).is_empty());
    }

    #[test]
    fn newest_llvm_comes_first() {
        let scratch = Scratch::new();
        for version in ["9", "14", "16"] {
            scratch.file(&format!("usr/lib/llvm-{version}/lib/libclang.so.1"), 0o644);
        }
        let found = check_libclang(&scratch.inputs()).found.unwrap();
        assert!(
            found.ends_with("usr/lib/llvm-16/lib/libclang.so.1"),
            "{}",
            found.display()
        );
        let dirs = libclang_search_dirs(&scratch.inputs());
        let order: Vec<_> = dirs
            .iter()
            .filter_map(|d| d.parent()?.file_name()?.to_str())
            .filter(|name| name.starts_with("llvm-"))
            .collect();
        assert_eq!(order, ["llvm-16", "llvm-14", "llvm-9"]);
    }

    #[test]
    fn missing_requirements_say_where_they_were_looked_for() {
        let scratch = Scratch::new();
        std::fs::create_dir_all(scratch.0.join("usr/lib")).unwrap();
        let checks = check(&scratch.inputs());
        let libclang = checks.iter().find(|c| c.name == "libclang").unwrap();
        assert!(
            libclang.looked_for.contains("usr/lib"),
            "{}",
            libclang.looked_for
        );
        assert!(summary(&checks).contains("libclang (missing)"));
    }
}
