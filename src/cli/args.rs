//! What stands between argv and clap: options of the setup actions may come
//! before the action (cryptsetup 0.1's `dmch [OPTIONS] create NAME DEVICE`),
//! and every parse error is one line.

use super::Cli;
use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use std::ffi::{OsStr, OsString};

/// The setup actions: the subcommands that take the setup options (they
/// have `--hash`). Read from the grammar, so they are declared once.
fn setup_actions() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|c| c.get_arguments().any(|a| a.get_id() == "hash"))
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Whether setup option `opt` (as typed, without `=value`) takes a value,
/// or `None` if it is no setup option.
fn takes_value(opt: &str) -> Option<bool> {
    let cmd = Cli::command();
    let create = cmd.find_subcommand("create")?;
    let arg = create.get_arguments().find(|a| {
        if let Some(long) = opt.strip_prefix("--") {
            a.get_long() == Some(long)
        } else {
            let mut c = opt.chars();
            c.next() == Some('-') && a.get_short().is_some_and(|s| c.next() == Some(s))
        }
    })?;
    Some(arg.get_action().takes_values())
}

/// Move setup options that stand before the action to just after it, so
/// the one grammar reads them; anything else is left as it is. Options
/// before no action at all are refused, unless they ask for help.
pub fn reorder(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let text = |a: &OsStr| a.to_string_lossy().into_owned();
    let mut i = 0;
    while i < args.len() {
        let a = text(&args[i]);
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, _)) => (n.to_string(), true),
            None => (a.clone(), false),
        };
        // -cVALUE: the option is the first two characters.
        let short_inline = !name.starts_with("--") && name.chars().count() > 2;
        let key: String = if short_inline {
            name.chars().take(2).collect()
        } else {
            name
        };
        match takes_value(&key) {
            None => return Ok(args), // not a setup option: the grammar decides
            Some(true) if !inline && !short_inline => i += 2,
            Some(_) => i += 1,
        }
    }
    if i == 0 {
        return Ok(args);
    }
    let action = args.get(i).map(|a| text(a));
    match action {
        Some(act) if setup_actions().contains(&act) => {
            let mut out = Vec::with_capacity(args.len());
            out.push(args[i].clone());
            out.extend_from_slice(&args[..i]);
            out.extend_from_slice(&args[i + 1..]);
            Ok(out)
        }
        // `dmch -h` alone, `dmch -?`: help.
        _ if args.len() == 1 => Ok(args),
        _ => Err(format!(
            "setup options need an action after them ({}), e.g. dmch -h plain create NAME DEVICE",
            setup_actions().join(", ")
        )),
    }
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        other => Some(other.to_string()),
    }
}

/// A clap error as one line (no usage, no tips); for the setup actions in
/// the words they always used. `None` for help and version, which are
/// printed.
pub fn one_line(e: &clap::Error, args: &[OsString]) -> Option<String> {
    let sub = args
        .iter()
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default()
        .to_string();
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    // Other commands keep clap's own words, on one line.
    if !setup_actions().contains(&sub) {
        return Some(first_line(e));
    }
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
    Some(match e.kind() {
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("unknown option {arg} (dmch {sub} --help lists them)")
        }
        ErrorKind::UnknownArgument => format!("{sub}: unexpected argument '{arg}'"),
        ErrorKind::MissingRequiredArgument => {
            let what = arg.to_lowercase();
            format!("{sub} needs {what} (dmch {sub} --help)")
        }
        ErrorKind::InvalidValue if value.is_empty() => {
            let opt = arg.split(' ').next().unwrap_or(&arg);
            format!("option {opt} needs a value")
        }
        ErrorKind::ValueValidation => {
            let opt = arg.split(' ').next().unwrap_or(&arg);
            let numeric =
                std::error::Error::source(e).is_some_and(|s| s.is::<std::num::ParseIntError>());
            if numeric {
                format!("option {opt}: '{value}' is not a number")
            } else {
                format!("option {opt}: invalid value '{value}': {}", first_line(e))
            }
        }
        _ => first_line(e),
    })
}

/// An error and its causes on one line, joined with ": ". Library errors
/// carry their cause's words in their own message too, so a cause already
/// in the line is not repeated.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// clap's own message, first line, without its "error: " prefix.
fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn leading_setup_options_move_after_the_action() {
        assert_eq!(
            reorder(os(&[
                "-h", "plain", "-cAES", "--skip=3", "-r", "create", "n", "d"
            ]))
            .unwrap(),
            os(&["create", "-h", "plain", "-cAES", "--skip=3", "-r", "n", "d"])
        );
        // Nothing to move, or not setup syntax: unchanged.
        for v in [
            vec!["create", "-h", "plain", "n", "d"],
            vec!["check", "--no-kernel"],
            vec!["--version"],
            vec!["-h"],
        ] {
            assert_eq!(reorder(os(&v)).unwrap(), os(&v));
        }
        assert!(reorder(os(&["-h", "create", "x"])).is_err());
    }

    #[test]
    fn a_cause_is_said_once() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("no such file")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "opening x: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Outer(Inner)).context("preparing");
        assert_eq!(error_line(&e), "preparing: opening x: no such file");
    }

    #[test]
    fn every_setup_action_takes_the_setup_options() {
        let a = setup_actions();
        for want in [
            "create",
            "open",
            "remove",
            "close",
            "reload",
            "resize",
            "status",
            "derive-key",
        ] {
            assert!(a.contains(&want.to_string()), "{want} missing from {a:?}");
        }
        assert!(!a.contains(&"check".to_string()));
    }
}
