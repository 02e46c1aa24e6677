//! The services' command line: no argument serves; `migrate` applies the schema migrations and
//! exits (the Kubernetes migration Job runs it once per release); `rebuild-projection NAME` and
//! `replay-dead-letters [MAX]` are operator commands of the services that have projections or
//! consumers.

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve until SIGTERM/SIGINT (no argument).
    Serve,
    /// Apply this build's migrations to the configured schema, then exit (`migrate`).
    Migrate,
    /// Rebuild the named projection from the first event and swap it in (`rebuild-projection NAME`).
    RebuildProjection(String),
    /// Move up to this many dead-lettered messages back to their queues
    /// (`replay-dead-letters [MAX]`, default 1000).
    ReplayDeadLetters(usize),
}

/// An argument the binary does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown arguments {0:?}; usage: {1} [migrate | rebuild-projection NAME | replay-dead-letters [MAX]]")]
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
        ["rebuild-projection", name] => Ok(Command::RebuildProjection((*name).to_owned())),
        ["replay-dead-letters"] => Ok(Command::ReplayDeadLetters(1000)),
        ["replay-dead-letters", max] => match max.parse::<usize>() {
            Ok(max) if max > 0 => Ok(Command::ReplayDeadLetters(max)),
            _ => Err(UsageError(args, program.to_owned())),
        },
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
        assert!(error.contains("migrat") && error.contains("usage: sentra-sales [migrate"), "{error}");
        assert_eq!(
            parse("s", vec!["rebuild-projection".into(), "sales.orders".into()]).unwrap(),
            Command::RebuildProjection("sales.orders".into())
        );
        assert_eq!(parse("s", vec!["replay-dead-letters".into()]).unwrap(), Command::ReplayDeadLetters(1000));
        assert_eq!(parse("s", vec!["replay-dead-letters".into(), "5".into()]).unwrap(), Command::ReplayDeadLetters(5));
        for bad in [vec!["replay-dead-letters", "0"], vec!["replay-dead-letters", "many"], vec!["rebuild-projection"]] {
            assert!(parse("s", bad.iter().map(|a| (*a).to_owned()).collect()).is_err(), "{bad:?}");
        }
    }
}
