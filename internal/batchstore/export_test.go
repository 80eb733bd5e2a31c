package batchstore

// The publish's sum of the parts' aggregates and the settings it runs under, for the test of
// its plan.
var (
	SumStagedSQL = sumStagedSQL
	SortsOff     = sortsOff
)
