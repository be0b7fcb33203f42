//! Counters and locks for login throttling and rate limits, kept in PostgreSQL so every
//! instance sees the same numbers: a client cannot escape a limit by landing on another
//! instance behind the load balancer.
//!
//! Each key (`login-account:<email>`, `login-ip:<ip>`, `signup-ip:<ip>`) holds a counter in
//! a fixed window that starts at its first hit, and optionally a lock until some time.

use deadpool_postgres::GenericClient;

/// Counts one hit on `key` in a window of `window_s` seconds; returns the count so far in
/// the current window (this hit included). One atomic statement: concurrent hits from
/// several instances each count.
pub async fn hit(
    db: &impl GenericClient,
    key: &str,
    window_s: u64,
) -> Result<i32, tokio_postgres::Error> {
    let window = window_s as f64;
    let row = db
        .query_one(
            "INSERT INTO throttle (key, window_start, count) VALUES ($1, now(), 1)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN throttle.window_start > now() - make_interval(secs => $2)
                            THEN throttle.count + 1 ELSE 1 END,
               window_start = CASE WHEN throttle.window_start > now() - make_interval(secs => $2)
                            THEN throttle.window_start ELSE now() END
             RETURNING count",
            &[&key, &window],
        )
        .await?;
    Ok(row.get(0))
}

/// The count in the current window of `key` (0 when its window has passed).
pub async fn count(
    db: &impl GenericClient,
    key: &str,
    window_s: u64,
) -> Result<i32, tokio_postgres::Error> {
    let window = window_s as f64;
    let row = db
        .query_opt(
            "SELECT count FROM throttle
             WHERE key = $1 AND window_start > now() - make_interval(secs => $2)",
            &[&key, &window],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
}

/// Seconds until the window of `key` ends (for `Retry-After`), at least 1.
pub async fn window_left_s(
    db: &impl GenericClient,
    key: &str,
    window_s: u64,
) -> Result<i64, tokio_postgres::Error> {
    let window = window_s as f64;
    let row = db
        .query_opt(
            "SELECT ceil(extract(epoch FROM
                 window_start + make_interval(secs => $2) - now()))::bigint
             FROM throttle WHERE key = $1",
            &[&key, &window],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(1).max(1))
}

/// Seconds left on the lock of `key`, if it is locked now.
pub async fn locked_for_s(
    db: &impl GenericClient,
    key: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT ceil(extract(epoch FROM locked_until - now()))::bigint FROM throttle
             WHERE key = $1 AND locked_until > now()",
            &[&key],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0).max(1)))
}

/// Locks `key` for `seconds` and starts its counter afresh, so after the lock the account
/// gets its full number of attempts again.
pub async fn lock(
    db: &impl GenericClient,
    key: &str,
    seconds: u64,
) -> Result<(), tokio_postgres::Error> {
    let seconds = seconds as f64;
    db.execute(
        "UPDATE throttle SET locked_until = now() + make_interval(secs => $2),
                             count = 0, window_start = now()
         WHERE key = $1",
        &[&key, &seconds],
    )
    .await?;
    Ok(())
}

pub async fn clear(db: &impl GenericClient, key: &str) -> Result<(), tokio_postgres::Error> {
    db.execute("DELETE FROM throttle WHERE key = $1", &[&key])
        .await?;
    Ok(())
}

/// Drops rows whose window and lock both ended more than `older_than_s` ago.
pub async fn prune(
    db: &impl GenericClient,
    older_than_s: u64,
) -> Result<u64, tokio_postgres::Error> {
    let age = older_than_s as f64;
    db.execute(
        "DELETE FROM throttle
         WHERE window_start < now() - make_interval(secs => $1)
           AND (locked_until IS NULL OR locked_until < now())",
        &[&age],
    )
    .await
}
