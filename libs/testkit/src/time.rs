//! Instants for "as of" tests: the ones where an off-by-one in a time bound shows.

use chrono::{DateTime, Duration, Utc};

/// Around sorted event times: a microsecond before the first, every event's own instant, the
/// middle of each gap and a microsecond before the next event (PostgreSQL's precision).
pub fn around(times: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    let micro = Duration::microseconds(1);
    let mut instants: Vec<DateTime<Utc>> = times.first().map(|first| *first - micro).into_iter().collect();
    for pair in times.windows(2) {
        instants.push(pair[0]);
        instants.push(pair[0] + (pair[1] - pair[0]) / 2);
        instants.push(pair[1] - micro);
    }
    instants.extend(times.last());
    instants
}
