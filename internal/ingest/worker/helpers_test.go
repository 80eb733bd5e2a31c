package worker

import (
	"os"
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
	batchBytes  = ingesttest.BatchBytes
	countPrices = ingesttest.CountPrices
	csvOf       = ingesttest.CSVOf
	hold        = ingesttest.Hold
	eventually  = ingesttest.Eventually
	openDB      = ingesttest.OpenDB
	gzipped     = ingesttest.Gzipped
	gunzip      = ingesttest.Gunzip
	sha         = ingesttest.SHA
)
