//! The services' command line: no argument serves, `migrate` applies the schema migrations and
//! exits (the Kubernetes migration Job runs it once per release).

/// What the binary was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Serve until SIGTERM/SIGINT (no argument).
    Serve,
    /// Apply this build's migrations to the configured schema, then exit (`migrate`).
    Migrate,
}

/// An argument the binary does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown arguments {0:?}; usage: {1} [migrate]")]
pub struct UsageError(Vec<String>, String);

/// Reads the command from the process arguments.
pub fn command() -> Result<Command, UsageError> {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_else(|| "sentra".into());
    parse(&program, args.collect())
}

fn parse(program: &str, args: Vec<String>) -> Result<Command, UsageError> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Ok(Command::Serve),
        ["migrate"] => Ok(Command::Migrate),
        _ => Err(UsageError(args, program.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_argument_serves_migrate_migrates_anything_else_is_refused() {
        assert_eq!(parse("s", vec![]).unwrap(), Command::Serve);
        assert_eq!(parse("s", vec!["migrate".into()]).unwrap(), Command::Migrate);
        let error = parse("sentra-sales", vec!["migrat".into()]).unwrap_err().to_string();
        assert!(error.contains("migrat") && error.contains("usage: sentra-sales [migrate]"), "{error}");
    }
}
