package httpjson

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/store"
)

// StatusOf is the one mapping from an error to the status that answers it, for every endpoint
// (/rates, /batches):
//
//   - an error that knows its answer (an unknown batch, a key used for other content, a refused
//     revert, an unreadable body) says it with an HTTPStatus method: 4xx;
//   - a deadlock is a bug, 500: every writer takes its locks in one order; one that came back
//     when store.RetryOnce ran a read again is contention, 503 as below;
//   - a database that cannot be used right now (store.IsUnavailable: unreachable, out of
//     connections, a serialisation failure a retry did not clear), or that did not answer in
//     time (a deadline, a statement or lock timeout), is 503: the same request may succeed
//     shortly;
//   - anything else is a fault to fix, 500.
func StatusOf(err error) int {
	var known interface{ HTTPStatus() int }
	var pgErr *pgconn.PgError
	isPG := errors.As(err, &pgErr)
	switch {
	case errors.As(err, &known):
		return known.HTTPStatus()
	case isPG && pgErr.Code == "40P01" && !errors.As(err, new(*store.RetriedError)):
		return http.StatusInternalServerError
	case store.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded),
		isPG && (pgErr.Code == "57014" || pgErr.Code == "55P03"):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
