package ingest

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/testing/ingesttest"
	"rates/internal/testing/pgserver"
)

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// newDB creates a migrated database with a region and ingesttest.TestPorts ports.
func newDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return ingesttest.OpenDB(t, pgserver.NewDatabase(t, srv))
}

const testPorts = ingesttest.TestPorts

var (
	portCode    = ingesttest.PortCode
	testLogger  = ingesttest.Logger
	newGenBatch = ingesttest.NewGenBatch
	batchBytes  = ingesttest.BatchBytes
	countPrices = ingesttest.CountPrices
	fingerprint = ingesttest.Fingerprint
	hold        = ingesttest.Hold
	csvOf       = ingesttest.CSVOf
	day0        = ingesttest.Day0
	gzipped     = ingesttest.Gzipped
	gunzip      = ingesttest.Gunzip
	sha         = ingesttest.SHA
)
