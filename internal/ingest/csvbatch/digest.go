package csvbatch

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
)

// RowDigest identifies a batch by its rows, not its bytes: the same rows re-exported (a price
// written 0100, CRLF for LF, no final line break, another order, another split into parts) give
// the same digest. It is the sum, modulo 2^256, of the SHA-256 of each row's canonical form
// (the staging row: fields as loaded, tab-separated), with the number of rows. A sum does not
// depend on the order of its terms, so digests of parts combine into the digest of the whole,
// in any order, and identical rows count as often as they occur.
//
// The digest tells honest re-sends apart; it is not meant to resist a producer who crafts rows
// to collide with another batch (a sum of hashes admits generalised-birthday attacks), which
// could only make the producer's own later batch be answered as a duplicate.
type RowDigest struct {
	sum  [4]uint64 // big-endian words of a 256-bit number
	rows int64
}

// Add counts one row in its canonical form.
func (d *RowDigest) Add(row []byte) {
	h := sha256.Sum256(row)
	d.addWords(h[:])
	d.rows++
}

// Combine adds the rows of o, the digest of another part of the same batch.
func (d *RowDigest) Combine(o RowDigest) {
	var b [32]byte
	for i, w := range o.sum {
		binary.BigEndian.PutUint64(b[i*8:], w)
	}
	d.addWords(b[:])
	d.rows += o.rows
}

func (d *RowDigest) addWords(h []byte) {
	var carry uint64
	for i := len(d.sum) - 1; i >= 0; i-- {
		d.sum[i], carry = bits.Add64(d.sum[i], binary.BigEndian.Uint64(h[i*8:]), carry)
	}
}

// SumBytes is the sum of the rows' hashes, 32 bytes big-endian: what a part contributes to its
// batch's digest (CombineDigests).
func (d RowDigest) SumBytes() []byte {
	b := make([]byte, 0, 32)
	for _, w := range d.sum {
		b = binary.BigEndian.AppendUint64(b, w)
	}
	return b
}

// Rows is the number of rows counted.
func (d RowDigest) Rows() int64 { return d.rows }

// String is the digest as 64 hex digits: the SHA-256 of the sum and the count, so that its
// value reveals nothing that could be extended.
func (d RowDigest) String() string {
	var b [len("rates.rows.v1") + 32 + 8]byte
	n := copy(b[:], "rates.rows.v1")
	for i, w := range d.sum {
		binary.BigEndian.PutUint64(b[n+i*8:], w)
	}
	binary.BigEndian.PutUint64(b[n+32:], uint64(d.rows)) //nolint:gosec // G115: a count of rows is never negative
	s := sha256.Sum256(b[:])
	return hex.EncodeToString(s[:])
}

// AddSum adds the sum and row count of another digest (RowDigest.SumBytes and Rows), as
// Combine does.
func (d *RowDigest) AddSum(sum []byte, rows int64) {
	d.addWords(sum)
	d.rows += rows
}
