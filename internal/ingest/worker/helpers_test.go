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
	newGenBatch = ingesttest.NewGenBatch
	batchBytes  = ingesttest.BatchBytes
	countPrices = ingesttest.CountPrices
	csvOf       = ingesttest.CSVOf
	hold        = ingesttest.Hold
	eventually  = ingesttest.Eventually
	portCode    = ingesttest.PortCode
	openDB      = ingesttest.OpenDB
	day0        = ingesttest.Day0
	gzipped     = ingesttest.Gzipped
	gunzip      = ingesttest.Gunzip
	sha         = ingesttest.SHA
)
