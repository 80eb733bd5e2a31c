package batchapi

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/testing/ingesttest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

func newDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return ingesttest.OpenDB(t, pgserver.NewDatabase(t, srv))
}

var (
	testLogger  = ingesttest.Logger
	newGenBatch = ingesttest.NewGenBatch
	batchBytes  = ingesttest.BatchBytes
	countPrices = ingesttest.CountPrices
	csvOf       = ingesttest.CSVOf
	gzipBomb    = ingesttest.GzipBomb
	gzipOf      = ingesttest.GzipOf
	eventually  = ingesttest.Eventually
)

// roleSerial tells apart the roles tests create in the shared cluster.
var roleSerial atomic.Int64

func sqlCount(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
