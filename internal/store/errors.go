package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// IsUnavailable tells an outage from a bug: it is true when err means the database cannot be
// used right now (unreachable, restarting, out of connections, too slow, or the pool closed)
// and the same request may well succeed shortly, and false for anything else (a bad query, a
// Scan into the wrong type, a constraint violation), which is a fault to fix. Deadlocks and
// serialisation failures count as unavailable once RetryOnce has retried them.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		return IsRetryable(err)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true // refused, reset, unreachable, timed out on the wire
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true // the query or the pool's wait for a connection ran out of time
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true // the server dropped the connection
	case errors.Is(err, puddle.ErrClosedPool):
		return true // shutting down
	case pgconn.SafeToRetry(err):
		return true // nothing reached the server: its connection was already closed
	}
	return false
}

// IsRetryable tells whether the server aborted the transaction so that another may proceed
// (deadlock detected, 40P01; serialisation failure, 40001): running it again is the remedy.
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// RetryOnce runs op, and runs it once more when the first attempt failed with a retryable
// error (IsRetryable) and ctx is still live. A second failure is returned as it is; callers
// answer it as unavailable (IsUnavailable is true for it).
func RetryOnce[T any](ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	v, err := op(ctx)
	if err != nil && IsRetryable(err) && ctx.Err() == nil {
		v, err = op(ctx)
		if err != nil && IsRetryable(err) {
			err = &RetriedError{Err: err}
		}
	}
	return v, err
}

// RetriedError is a deadlock or serialisation failure that came back when RetryOnce ran its
// statement again: contention, not the bug in the order of locks that a deadlock of a writer
// that is never retried means.
type RetriedError struct{ Err error }

func (e *RetriedError) Error() string { return e.Err.Error() + " (retried once)" }
func (e *RetriedError) Unwrap() error { return e.Err }
