// Package batchstore is the PostgreSQL side of multi-part batches staged in parallel: a
// manifest registers its batch and parts (Register); any number of loaders stage parts side by
// side, each part in a transaction of its own (StagePart); one short transaction publishes the
// batch once every part is staged (Publish); a bad part, or a deadline that passes, ends the
// batch with nothing of it left (Reject, Fail, FailExpired).
//
// Staged rows sit in prices under their batch's id while the batch is 'staging', and nothing
// reads them: the triggers that keep price_daily and the data generation leave them out, and
// readers of prices read the view published_prices (migrations 000037 and 000038). The publish
// adds the batch's per route-day aggregate, summed from what each part left in staged_daily, to
// price_daily in key order, and moves the data generation: its cost grows with the route-days
// the batch touches, not with its rows.
//
// The package does not parse: a part's rows arrive as COPY text with what the parser's checks
// found (PartRows), and the batch's identity is computed from the parts' row digests by the
// caller's Options.Identity.
package batchstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is the state of a batch, as batches.status records it.
type Status string

// The states a multi-part batch goes through.
const (
	StatusStaging   Status = "staging"   // registered; parts being staged, nothing visible
	StatusLoaded    Status = "loaded"    // published
	StatusDuplicate Status = "duplicate" // its content was loaded already: its staged rows removed
	StatusRejected  Status = "rejected"  // a part was bad: its staged rows removed, a report
	StatusFailed    Status = "failed"    // ended before its publish otherwise (deadline): a report
)

// Digest is what a part contributes to its batch's identity: the order-insensitive digest of its
// rows (the sum of their hashes) and their number.
type Digest struct {
	Sum  []byte
	Rows int64
}

// Options configure a Store. Each is required: their defaults live with the configuration.
type Options struct {
	// MaxErrors bounds the problems a report lists.
	MaxErrors int
	// MaxBatchDuration is how long a batch may stay staging after its registration; past it the
	// batch fails. statement_timeout and lock_timeout of each transaction derive from it.
	MaxBatchDuration time.Duration
	// Identity combines the digests of a batch's parts, in part order, into the digest of the
	// batch's rows (csvbatch.RowDigest's): 64 lowercase hex digits, its identity being "prices:"
	// and the digest (batches.rows_key).
	Identity func(parts []Digest) string
}

// Store registers, stages, publishes and ends multi-part batches in one database.
type Store struct {
	pool        *pgxpool.Pool
	maxErrors   int
	maxDuration time.Duration
	identity    func([]Digest) string
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	switch {
	case pool == nil:
		return nil, errors.New("batch store: no database pool")
	case opts.MaxErrors <= 0:
		return nil, fmt.Errorf("batch store: MaxErrors must be positive, got %d", opts.MaxErrors)
	case opts.MaxBatchDuration <= 0:
		return nil, fmt.Errorf("batch store: MaxBatchDuration must be positive, got %s", opts.MaxBatchDuration)
	case opts.Identity == nil:
		return nil, errors.New("batch store: no Identity function")
	}
	return &Store{pool: pool, maxErrors: opts.MaxErrors, maxDuration: opts.MaxBatchDuration, identity: opts.Identity}, nil
}

// Problem is one reason a part, or the batch, was refused. Line is the part's CSV line (the
// header is line 1), or 0 for a problem of the whole part; Column names the field, if one.
type Problem struct {
	Line   int64  `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
	// Part is the key of the part, as its manifest names it.
	Part string `json:"part,omitempty"`
}

// Report explains a batch that ended without its publish, in the form batches.report holds for
// every batch.
type Report struct {
	// BadRows counts every row with at least one problem, also beyond those listed.
	BadRows int64 `json:"bad_rows"`
	// Problems are the first ones, by part and line, at most Options.MaxErrors.
	Problems []Problem `json:"errors"`
}

// NotReadyError says a batch cannot be published yet: some parts are not staged.
type NotReadyError struct {
	BatchID int64
	Pending int // parts not settled yet
	Bad     int // parts found bad, or checked beside a bad part
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("batch %d is not ready to publish: %d parts pending, %d bad", e.BatchID, e.Pending, e.Bad)
}

// ErrNoBatch is returned for a batch id that no multi-part batch has.
var ErrNoBatch = errors.New("no such multi-part batch")
