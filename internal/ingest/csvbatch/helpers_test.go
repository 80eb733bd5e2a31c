package csvbatch

import "rates/internal/testing/ingesttest"

var (
	batchBytes = ingesttest.BatchBytes
	gzipBomb   = ingesttest.GzipBomb
	gzipOf     = ingesttest.GzipOf
)
