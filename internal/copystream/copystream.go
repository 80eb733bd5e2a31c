// Package copystream turns a producer of rows into the io.Reader that COPY FROM STDIN reads,
// so that the batch loader and the seed stream rows to PostgreSQL without holding them.
package copystream

import (
	"errors"
	"io"
)

// Next returns the next chunk of COPY text (one or more whole rows, or nothing), or io.EOF at
// the end of the data, or the error that stops the stream. The chunk may be reused by the
// following call: Reader copies it out first.
type Next func() ([]byte, error)

// Reader drains the chunks of a Next into the caller's buffers.
type Reader struct {
	next    Next
	pending []byte
	err     error
}

// NewReader returns a Reader over next.
func NewReader(next Next) *Reader { return &Reader{next: next} }

// Read implements io.Reader. It fills p with as many chunks as fit before it returns, because
// pgconn sends each Read as one CopyData message.
func (r *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.pending) > 0 {
			k := copy(p[n:], r.pending)
			r.pending = r.pending[k:]
			n += k
			continue
		}
		if r.err != nil {
			return n, r.err
		}
		r.pending, r.err = r.next()
	}
	return n, nil
}

// Err returns the error that stopped the stream, other than io.EOF: the server only sees a
// failed COPY, so the caller reports this one.
func (r *Reader) Err() error {
	if errors.Is(r.err, io.EOF) {
		return nil
	}
	return r.err
}
