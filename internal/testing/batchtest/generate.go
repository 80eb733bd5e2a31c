package batchtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"rates/internal/batchstore"
)

// Batch is a multi-part batch held in memory: the CSV of each part and the manifest naming them.
type Batch struct {
	Parts    [][]byte
	Manifest batchstore.Manifest
}

// Spread makes a batch of rows prices in parts parts (as even as can be) over random pairs of
// distinct ports of ports, on days from day0 over days days: about one route-day per price when
// the pairs and days are many, as a carrier's yearly tariff would be. The same seed gives the
// same batch. Its manifest is a file's (no source key), in append mode.
func Spread(ports []string, rows, parts int, seed uint64, day0 time.Time, days int) Batch {
	rng := rand.New(rand.NewPCG(seed, 7)) //nolint:gosec // G404: test data, not secrets
	b := Batch{Manifest: batchstore.Manifest{SourceKind: "file", SourceName: fmt.Sprintf("spread-%d", seed), Mode: "append"}}
	var all bytes.Buffer
	for i := range parts {
		var buf bytes.Buffer
		buf.WriteString(Header + "\n")
		for range rows/parts + btoi(i < rows%parts) {
			o := rng.IntN(len(ports))
			d := (o + 1 + rng.IntN(len(ports)-1)) % len(ports)
			fmt.Fprintf(&buf, "%s,%s,%s,%d\n", ports[o], ports[d], day0.AddDate(0, 0, rng.IntN(days)).Format(time.DateOnly), 300+rng.IntN(3000))
		}
		b.AddPart(fmt.Sprintf("part-%02d.csv", i+1), buf.Bytes())
		all.Write(buf.Bytes())
	}
	sum := sha256.Sum256(all.Bytes())
	b.Manifest.SHA256 = hex.EncodeToString(sum[:])
	b.Manifest.Bytes = int64(all.Len())
	return b
}

// AddPart appends a part, with its checksum, to the batch and its manifest.
func (b *Batch) AddPart(key string, csv []byte) {
	sum := sha256.Sum256(csv)
	b.Parts = append(b.Parts, csv)
	b.Manifest.Parts = append(b.Manifest.Parts, batchstore.PartSpec{Key: key, SHA256: hex.EncodeToString(sum[:])})
}

// Open opens the batch's parts for batchstore.StagePart, by key, keeping at most maxErrors
// problems per part.
func (b *Batch) Open(maxErrors int) func(ctx context.Context, key string) (batchstore.PartRows, error) {
	return func(_ context.Context, key string) (batchstore.PartRows, error) {
		for i, p := range b.Manifest.Parts {
			if p.Key == key {
				return NewPart(io.NopCloser(bytes.NewReader(b.Parts[i])), maxErrors), nil
			}
		}
		return nil, fmt.Errorf("no part %s", key)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
